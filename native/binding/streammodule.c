/*
 * mfpsecd._native, part two: segmented AES-256-GCM streams and AES-256-XTS. The key is
 * copied out of the caller's buffer for the call and zeroed after; the GIL is released
 * for the whole operation.
 */
#include "binding.h"

#include "mfp_native.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

/* ---- StreamState: progress, cancel and the failing segment, shared with a poller */

typedef struct {
    PyObject_HEAD
    struct mfp_stream_state st;
} StreamStateObject;

static PyTypeObject *StreamStateType;

#define SS(o) (&((StreamStateObject *)(o))->st)

static PyObject *streamstate_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_SetString(PyExc_TypeError, "StreamState() takes no arguments");
        return NULL;
    }
    StreamStateObject *self = (StreamStateObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    memset(&self->st, 0, sizeof self->st);
    return (PyObject *)self;
}

static void streamstate_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *streamstate_cancel(PyObject *self, PyObject *unused)
{
    (void)unused;
    atomic_store(&SS(self)->cancel, 1);
    Py_RETURN_NONE;
}

static PyObject *ss_bytes_in(PyObject *o, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(atomic_load(&SS(o)->bytes_in));
}
static PyObject *ss_bytes_out(PyObject *o, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(atomic_load(&SS(o)->bytes_out));
}
static PyObject *ss_bytes_moved(PyObject *o, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(atomic_load(&SS(o)->bytes_moved));
}
static PyObject *ss_bad_segment(PyObject *o, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(atomic_load(&SS(o)->bad_segment));
}
static PyObject *ss_cancelled(PyObject *o, void *c)
{
    (void)c;
    return PyBool_FromLong(atomic_load(&SS(o)->cancel));
}

static PyGetSetDef streamstate_getset[] = {
    {"bytes_in", ss_bytes_in, NULL, "bytes consumed from the source", NULL},
    {"bytes_out", ss_bytes_out, NULL, "bytes written to the destination", NULL},
    {"bytes_moved", ss_bytes_moved, NULL,
     "bytes read plus written so far, counted at every read and write", NULL},
    {"bad_segment", ss_bad_segment, NULL, "the first segment that failed authentication", NULL},
    {"cancelled", ss_cancelled, NULL, "cancel() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef streamstate_methods[] = {
    {"cancel", streamstate_cancel, METH_NOARGS,
     "cancel() -> None\n\nAsk a running descriptor stream to stop at its next slot."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot streamstate_slots[] = {
    {Py_tp_new, (void *)streamstate_new},
    {Py_tp_dealloc, (void *)streamstate_dealloc},
    {Py_tp_methods, streamstate_methods},
    {Py_tp_getset, streamstate_getset},
    {Py_tp_doc, (void *)"StreamState()\n\nProgress, cancellation and the failing segment of "
                        "one stream call, readable while it runs in another thread."},
    {0, NULL},
};

static PyType_Spec streamstate_spec = {
    .name = "mfpsecd._native.StreamState",
    .basicsize = sizeof(StreamStateObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = streamstate_slots,
};

/* ---- arguments shared by the stream calls */

struct stream_args {
    uint8_t key[MFP_AES256_KEY_BYTES];
    uint8_t context[MFP_STREAM_MAX_CONTEXT];
    struct mfp_stream_params p;
};

static int stream_args(struct stream_args *a, PyObject *key, PyObject *context, PyObject *shift,
                       PyObject *threads)
{
    memset(a, 0, sizeof *a);
    Py_buffer k, c;
    if (PyObject_GetBuffer(key, &k, PyBUF_SIMPLE) != 0)
        return -1;
    if (k.len != MFP_AES256_KEY_BYTES) {
        PyBuffer_Release(&k);
        PyErr_SetString(PyExc_ValueError, "key must be 32 bytes");
        return -1;
    }
    memcpy(a->key, k.buf, MFP_AES256_KEY_BYTES);
    PyBuffer_Release(&k);
    if (PyObject_GetBuffer(context, &c, PyBUF_SIMPLE) != 0)
        return -1;
    if (c.len > MFP_STREAM_MAX_CONTEXT) {
        PyBuffer_Release(&c);
        PyErr_SetString(PyExc_ValueError, "context is longer than 256 bytes");
        return -1;
    }
    memcpy(a->context, c.buf, (size_t)c.len);
    a->p.context_len = (size_t)c.len;
    PyBuffer_Release(&c);
    a->p.key = a->key;
    a->p.context = a->context;
    a->p.seg_shift = shift == NULL ? 0 : (unsigned)PyLong_AsUnsignedLong(shift);
    a->p.threads = (unsigned)PyLong_AsUnsignedLong(threads);
    return PyErr_Occurred() ? -1 : 0;
}

static void stream_args_clear(struct stream_args *a)
{
    mfp_secure_zero(a, sizeof *a);
}

static struct mfp_stream_state *optional_state(PyObject *o, int *bad)
{
    *bad = 0;
    if (o == Py_None)
        return NULL;
    if (!PyObject_TypeCheck(o, StreamStateType)) {
        PyErr_SetString(PyExc_TypeError, "state must be a StreamState or None");
        *bad = 1;
        return NULL;
    }
    return SS(o);
}

/* stream_seal(key, context, seg_shift, threads, src, dst, state) -> int
 * stream_open(key, context, threads, src, dst, state) -> int */
static PyObject *memory_call(PyObject *const *args, Py_ssize_t nargs, int sealing)
{
    Py_ssize_t want = sealing ? 7 : 6;
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "expected %zd arguments", want);
        return NULL;
    }
    Py_ssize_t at = sealing ? 4 : 3;
    int bad = 0;
    struct mfp_stream_state *st = optional_state(args[at + 2], &bad);
    if (bad)
        return NULL;
    struct stream_args a;
    if (stream_args(&a, args[0], args[1], sealing ? args[2] : NULL, args[at - 1]) != 0) {
        stream_args_clear(&a);
        return NULL;
    }
    Py_buffer src, dst;
    if (PyObject_GetBuffer(args[at], &src, PyBUF_CONTIG_RO) != 0) {
        stream_args_clear(&a);
        return NULL;
    }
    if (PyObject_GetBuffer(args[at + 1], &dst, PyBUF_CONTIG) != 0) {
        PyBuffer_Release(&src);
        stream_args_clear(&a);
        return NULL;
    }
    size_t out_len = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    if (sealing)
        rc =
            mfp_stream_seal(&a.p, src.buf, (size_t)src.len, dst.buf, (size_t)dst.len, &out_len, st);
    else
        rc =
            mfp_stream_open(&a.p, src.buf, (size_t)src.len, dst.buf, (size_t)dst.len, &out_len, st);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&dst);
    PyBuffer_Release(&src);
    stream_args_clear(&a);
    if (mfp_py_check_rc(rc, sealing ? "stream_seal" : "stream_open") != 0)
        return NULL;
    return PyLong_FromSize_t(out_len);
}

static PyObject *py_stream_seal(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return memory_call(args, nargs, 1);
}

static PyObject *py_stream_open(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return memory_call(args, nargs, 0);
}

/* stream_seal_fd(key, context, seg_shift, threads, flags, in_fd, out_fd, state) -> int
 * stream_open_fd(key, context, threads, flags, in_fd, out_fd, state) -> int
 * (out_fd -1: authenticate only) */
static PyObject *fd_call(PyObject *const *args, Py_ssize_t nargs, int sealing)
{
    Py_ssize_t want = sealing ? 8 : 7;
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "expected %zd arguments", want);
        return NULL;
    }
    Py_ssize_t at = sealing ? 5 : 4;
    unsigned long flags = PyLong_AsUnsignedLong(args[at - 1]);
    if (flags == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    int in_fd = PyObject_AsFileDescriptor(args[at]);
    if (in_fd < 0)
        return NULL;
    long out_fd = PyLong_AsLong(args[at + 1]);
    if (out_fd == -1 && PyErr_Occurred())
        return NULL;
    PyObject *state = args[at + 2];
    if (!PyObject_TypeCheck(state, StreamStateType)) {
        PyErr_SetString(PyExc_TypeError, "state must be a StreamState");
        return NULL;
    }
    struct stream_args a;
    if (stream_args(&a, args[0], args[1], sealing ? args[2] : NULL, args[at - 2]) != 0) {
        stream_args_clear(&a);
        return NULL;
    }
    a.p.flags = (unsigned)flags;
    uint64_t out = 0;
    int rc;
    /* The state object is kept alive by the caller's arguments for the whole call. */
    Py_BEGIN_ALLOW_THREADS
    if (sealing)
        rc = mfp_stream_seal_fd(&a.p, in_fd, (int)out_fd, &out, SS(state));
    else
        rc = mfp_stream_open_fd(&a.p, in_fd, (int)out_fd, &out, SS(state));
    Py_END_ALLOW_THREADS
    stream_args_clear(&a);
    if (mfp_py_check_rc(rc, sealing ? "stream_seal_fd" : "stream_open_fd") != 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(out);
}

static PyObject *py_stream_seal_fd(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return fd_call(args, nargs, 1);
}

static PyObject *py_stream_open_fd(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return fd_call(args, nargs, 0);
}

static PyObject *py_stream_sealed_size(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "stream_sealed_size(length, seg_shift)");
        return NULL;
    }
    unsigned long long len = PyLong_AsUnsignedLongLong(args[0]);
    unsigned long shift = PyLong_AsUnsignedLong(args[1]);
    if (PyErr_Occurred())
        return NULL;
    uint64_t out = 0;
    if (mfp_py_check_rc(mfp_stream_sealed_size(len, (unsigned)shift, &out), "stream_sealed_size") !=
        0)
        return NULL;
    return PyLong_FromUnsignedLongLong(out);
}

static PyObject *py_stream_plain_size(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "stream_plain_size(header, sealed_length)");
        return NULL;
    }
    unsigned long long len = PyLong_AsUnsignedLongLong(args[1]);
    if (PyErr_Occurred())
        return NULL;
    Py_buffer h;
    if (PyObject_GetBuffer(args[0], &h, PyBUF_SIMPLE) != 0)
        return NULL;
    int rc = h.len < MFP_STREAM_HEADER_BYTES ? -EBADMSG : 0;
    uint64_t out = 0;
    if (rc == 0)
        rc = mfp_stream_plain_size(h.buf, len, &out);
    PyBuffer_Release(&h);
    if (mfp_py_check_rc(rc, "stream_plain_size") != 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(out);
}

/* ---- AES-256-XTS */

/* xts_sectors(key, first_sector, sector_size, src, dst, encrypt)
 * xts_unit(key, tweak, src, dst, encrypt) */
static PyObject *xts_call(PyObject *const *args, Py_ssize_t nargs, int sectors)
{
    Py_ssize_t want = sectors ? 6 : 5;
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "expected %zd arguments", want);
        return NULL;
    }
    unsigned long long first = 0;
    unsigned long long sector_size = 0;
    Py_buffer tweak = {0};
    if (sectors) {
        first = PyLong_AsUnsignedLongLong(args[1]);
        sector_size = PyLong_AsUnsignedLongLong(args[2]);
        if (PyErr_Occurred())
            return NULL;
    } else {
        if (PyObject_GetBuffer(args[1], &tweak, PyBUF_SIMPLE) != 0)
            return NULL;
        if (tweak.len != 16) {
            PyBuffer_Release(&tweak);
            PyErr_SetString(PyExc_ValueError, "tweak must be 16 bytes");
            return NULL;
        }
    }
    Py_ssize_t at = sectors ? 3 : 2;
    int encrypt = PyObject_IsTrue(args[at + 2]);
    uint8_t key[MFP_XTS_KEY_BYTES];
    uint8_t tw[16] = {0};
    Py_buffer k, src, dst;
    int held = 0;
    int rc = 0;
    if (encrypt < 0 || PyObject_GetBuffer(args[0], &k, PyBUF_SIMPLE) != 0)
        goto out;
    held = 1;
    if (k.len != MFP_XTS_KEY_BYTES) {
        PyErr_SetString(PyExc_ValueError, "key must be 64 bytes");
        goto out;
    }
    memcpy(key, k.buf, sizeof key);
    if (PyObject_GetBuffer(args[at], &src, PyBUF_CONTIG_RO) != 0)
        goto out;
    held = 2;
    if (PyObject_GetBuffer(args[at + 1], &dst, PyBUF_CONTIG) != 0)
        goto out;
    held = 3;
    if (dst.len != src.len) {
        PyErr_SetString(PyExc_ValueError, "dst must be as long as src");
        goto out;
    }
    if (!sectors)
        memcpy(tw, tweak.buf, sizeof tw);
    Py_BEGIN_ALLOW_THREADS
    if (sectors)
        rc = mfp_aes256xts_sectors(key, first, (size_t)sector_size, src.buf, dst.buf,
                                   (size_t)src.len, encrypt);
    else
        rc = mfp_aes256xts_unit(key, tw, src.buf, dst.buf, (size_t)src.len, encrypt);
    Py_END_ALLOW_THREADS
    rc = mfp_py_check_rc(rc, sectors ? "xts_sectors" : "xts_unit"); /* the error, if any */
out:
    mfp_secure_zero(key, sizeof key);
    if (held >= 3)
        PyBuffer_Release(&dst);
    if (held >= 2)
        PyBuffer_Release(&src);
    if (held >= 1)
        PyBuffer_Release(&k);
    if (!sectors)
        PyBuffer_Release(&tweak);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_xts_sectors(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return xts_call(args, nargs, 1);
}

static PyObject *py_xts_unit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return xts_call(args, nargs, 0);
}

static PyMethodDef stream_methods[] = {
    {"stream_sealed_size", (PyCFunction)(void (*)(void))py_stream_sealed_size, METH_FASTCALL,
     "stream_sealed_size(length, seg_shift) -> int\n\nBytes a stream of length plaintext "
     "bytes takes sealed."},
    {"stream_plain_size", (PyCFunction)(void (*)(void))py_stream_plain_size, METH_FASTCALL,
     "stream_plain_size(header, sealed_length) -> int\n\nPlaintext bytes of a sealed stream; "
     "NativeError(EBADMSG) when the header or length cannot be one."},
    {"stream_seal", (PyCFunction)(void (*)(void))py_stream_seal, METH_FASTCALL,
     "stream_seal(key, context, seg_shift, threads, src, dst, state) -> int\n\n"
     "Seal src into the writable dst (stream_sealed_size bytes); returns the bytes written."},
    {"stream_open", (PyCFunction)(void (*)(void))py_stream_open, METH_FASTCALL,
     "stream_open(key, context, threads, src, dst, state) -> int\n\nAuthenticate and "
     "decrypt src into dst; NativeError(EBADMSG) with dst zeroed when anything was altered."},
    {"stream_seal_fd", (PyCFunction)(void (*)(void))py_stream_seal_fd, METH_FASTCALL,
     "stream_seal_fd(key, context, seg_shift, threads, flags, in_fd, out_fd, state) -> int\n\n"
     "Seal everything read from in_fd (a file or pipe) to out_fd; returns the bytes written. "
     "flags: STREAM_DIRECT writes out_fd with O_DIRECT."},
    {"stream_open_fd", (PyCFunction)(void (*)(void))py_stream_open_fd, METH_FASTCALL,
     "stream_open_fd(key, context, threads, flags, in_fd, out_fd, state) -> int\n\nOpen a sealed "
     "stream from in_fd, writing authenticated plaintext to out_fd (-1: authenticate "
     "only); returns the plaintext bytes."},
    {"xts_sectors", (PyCFunction)(void (*)(void))py_xts_sectors, METH_FASTCALL,
     "xts_sectors(key, first_sector, sector_size, src, dst, encrypt) -> None\n\n"
     "AES-256-XTS over whole sectors, tweak = sector number (little-endian, plain64)."},
    {"xts_unit", (PyCFunction)(void (*)(void))py_xts_unit, METH_FASTCALL,
     "xts_unit(key, tweak, src, dst, encrypt) -> None\n\nAES-256-XTS over one data unit "
     "with a raw 16-byte tweak (IEEE 1619)."},
    {NULL, NULL, 0, NULL},
};

int mfp_py_stream_exec(PyObject *m)
{
    StreamStateType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &streamstate_spec, NULL);
    if (StreamStateType == NULL)
        return -1;
    if (PyModule_AddObjectRef(m, "StreamState", (PyObject *)StreamStateType) != 0)
        return -1;
    if (PyModule_AddFunctions(m, stream_methods) != 0)
        return -1;
    if (PyModule_AddIntConstant(m, "STREAM_HEADER_BYTES", MFP_STREAM_HEADER_BYTES) != 0 ||
        PyModule_AddIntConstant(m, "STREAM_TAG_BYTES", MFP_STREAM_TAG_BYTES) != 0 ||
        PyModule_AddIntConstant(m, "STREAM_DEFAULT_SHIFT", MFP_STREAM_DEFAULT_SHIFT) != 0 ||
        PyModule_AddIntConstant(m, "STREAM_MIN_SHIFT", MFP_STREAM_MIN_SHIFT) != 0 ||
        PyModule_AddIntConstant(m, "STREAM_MAX_SHIFT", MFP_STREAM_MAX_SHIFT) != 0 ||
        PyModule_AddIntConstant(m, "STREAM_MAX_THREADS", MFP_STREAM_MAX_THREADS) != 0 ||
        PyModule_AddIntConstant(m, "STREAM_DIRECT", MFP_STREAM_DIRECT) != 0)
        return -1;
    return 0;
}
