/*
 * The overwrite engine's part of mfpsecd._native: WipeState (the progress a poller reads
 * while a pass runs with the GIL released), the target's geometry, a pass and its
 * read-back.
 */
#include "binding.h"

#include "mfp_native.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    struct mfp_wipe_state st;
} WipeStateObject;

static PyTypeObject *WipeStateType;

static PyObject *wipestate_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_SetString(PyExc_TypeError, "WipeState() takes no arguments");
        return NULL;
    }
    WipeStateObject *self = (WipeStateObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    memset(&self->st, 0, sizeof self->st);
    return (PyObject *)self;
}

static void wipestate_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *wipestate_cancel(PyObject *self, PyObject *unused)
{
    (void)unused;
    atomic_store(&((WipeStateObject *)self)->st.cancel, 1);
    Py_RETURN_NONE;
}

#define WS(o) (&((WipeStateObject *)(o))->st)

static PyObject *ws_position(PyObject *o, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(atomic_load(&WS(o)->position));
}
static PyObject *ws_durable(PyObject *o, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(atomic_load(&WS(o)->durable));
}
static PyObject *ws_error_offset(PyObject *o, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(atomic_load(&WS(o)->error_offset));
}
static PyObject *ws_buffered(PyObject *o, void *c)
{
    (void)c;
    return PyBool_FromLong(atomic_load(&WS(o)->buffered));
}
static PyObject *ws_cancelled(PyObject *o, void *c)
{
    (void)c;
    return PyBool_FromLong(atomic_load(&WS(o)->cancel));
}

static PyGetSetDef wipestate_getset[] = {
    {"position", ws_position, NULL, "end of the last chunk written or read", NULL},
    {"durable", ws_durable, NULL, "everything from the call's start up to here is flushed", NULL},
    {"error_offset", ws_error_offset, NULL, "offset of the failing I/O or first mismatch", NULL},
    {"buffered", ws_buffered, NULL, "O_DIRECT was refused; the page cache + fdatasync is used",
     NULL},
    {"cancelled", ws_cancelled, NULL, "cancel() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef wipestate_methods[] = {
    {"cancel", wipestate_cancel, METH_NOARGS,
     "cancel() -> None\n\nAsk the running pass to stop at its next chunk (from any thread)."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot wipestate_slots[] = {
    {Py_tp_new, (void *)wipestate_new},
    {Py_tp_dealloc, (void *)wipestate_dealloc},
    {Py_tp_methods, wipestate_methods},
    {Py_tp_getset, wipestate_getset},
    {Py_tp_doc, (void *)"WipeState()\n\nProgress, checkpoint and cancellation of one overwrite "
                        "engine call, readable while the call runs in another thread."},
    {0, NULL},
};

static PyType_Spec wipestate_spec = {
    .name = "mfpsecd._native.WipeState",
    .basicsize = sizeof(WipeStateObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = wipestate_slots,
};

static PyObject *py_wipe_geometry(PyObject *self, PyObject *arg)
{
    (void)self;
    int fd = PyObject_AsFileDescriptor(arg);
    if (fd < 0)
        return NULL;
    uint64_t size = 0;
    uint32_t lb = 0;
    if (mfp_py_check_rc(mfp_wipe_geometry(fd, &size, &lb), "wipe_geometry") != 0)
        return NULL;
    return Py_BuildValue("(KI)", (unsigned long long)size, (unsigned int)lb);
}

/* wipe_write(fd, start, end, kind, byte, key, flags, sync_every, state)
 * wipe_verify(fd, start, end, kind, byte, key, flags, state) */
static PyObject *wipe_call(PyObject *const *args, Py_ssize_t nargs, int writing)
{
    Py_ssize_t want = writing ? 9 : 8;
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "expected %zd arguments", want);
        return NULL;
    }
    int fd = PyObject_AsFileDescriptor(args[0]);
    if (fd < 0)
        return NULL;
    unsigned long long start = PyLong_AsUnsignedLongLong(args[1]);
    unsigned long long end = PyLong_AsUnsignedLongLong(args[2]);
    long kind = PyLong_AsLong(args[3]);
    long byte = PyLong_AsLong(args[4]);
    unsigned long flags = PyLong_AsUnsignedLong(args[6]);
    unsigned long long sync_every = writing ? PyLong_AsUnsignedLongLong(args[7]) : 0;
    if (PyErr_Occurred())
        return NULL;
    if (byte < 0 || byte > 255 || kind < 0 || kind > 1) {
        PyErr_SetString(PyExc_ValueError, "kind must be 0 or 1 and byte 0..255");
        return NULL;
    }
    PyObject *state = args[writing ? 8 : 7];
    if (!PyObject_TypeCheck(state, WipeStateType)) {
        PyErr_SetString(PyExc_TypeError, "state must be a WipeState");
        return NULL;
    }
    struct mfp_pass pass;
    memset(&pass, 0, sizeof pass);
    pass.kind = (int)kind;
    pass.byte = (uint8_t)byte;
    Py_buffer key;
    if (PyObject_GetBuffer(args[5], &key, PyBUF_SIMPLE) != 0)
        return NULL;
    if (kind == MFP_PASS_RANDOM && key.len != MFP_AES256_KEY_BYTES) {
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "a random pass needs a 32-byte key");
        return NULL;
    }
    if (kind == MFP_PASS_RANDOM)
        memcpy(pass.key, key.buf, MFP_AES256_KEY_BYTES);
    PyBuffer_Release(&key);
    int rc;
    /* The state object is kept alive by the caller's argument tuple for the whole call. */
    Py_BEGIN_ALLOW_THREADS
    if (writing)
        rc = mfp_wipe_write(fd, start, end, &pass, (unsigned)flags, sync_every, WS(state));
    else
        rc = mfp_wipe_verify(fd, start, end, &pass, (unsigned)flags, WS(state));
    Py_END_ALLOW_THREADS
    mfp_secure_zero(&pass, sizeof pass);
    if (mfp_py_check_rc(rc, writing ? "wipe_write" : "wipe_verify") != 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_wipe_write(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return wipe_call(args, nargs, 1);
}

static PyObject *py_wipe_verify(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return wipe_call(args, nargs, 0);
}

static PyMethodDef overwrite_methods[] = {
    {"wipe_geometry", py_wipe_geometry, METH_O,
     "wipe_geometry(fd) -> (size, logical_block)\n\nSize of a regular file or block device "
     "(BLKGETSIZE64) and its logical block size (BLKSSZGET; 512 for files)."},
    {"wipe_write", (PyCFunction)(void (*)(void))py_wipe_write, METH_FASTCALL,
     "wipe_write(fd, start, end, kind, byte, key, flags, sync_every, state) -> None\n\n"
     "One overwrite pass over [start, end) (GIL released); kind 0 = byte, 1 = AES-256-CTR "
     "stream under key. fdatasync every sync_every bytes, published in state.durable."},
    {"wipe_verify", (PyCFunction)(void (*)(void))py_wipe_verify, METH_FASTCALL,
     "wipe_verify(fd, start, end, kind, byte, key, flags, state) -> None\n\n"
     "Read [start, end) back from the medium and compare with the pass; NativeError(EBADMSG) "
     "with state.error_offset at the first differing byte."},
    {NULL, NULL, 0, NULL},
};

int mfp_py_overwrite_exec(PyObject *m)
{
    WipeStateType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &wipestate_spec, NULL);
    if (WipeStateType == NULL)
        return -1;
    if (PyModule_AddObjectRef(m, "WipeState", (PyObject *)WipeStateType) != 0)
        return -1;
    if (PyModule_AddFunctions(m, overwrite_methods) != 0)
        return -1;
    if (PyModule_AddIntConstant(m, "WIPE_DIRECT", MFP_WIPE_DIRECT) != 0 ||
        PyModule_AddIntConstant(m, "WIPE_CHUNK_BYTES", MFP_WIPE_CHUNK_BYTES) != 0)
        return -1;
    return 0;
}
