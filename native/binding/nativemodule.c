/*
 * mfpsecd._native: thin CPython binding over native/include/mfp_native.h.
 * Every engine return code goes through check_rc(), which raises NativeError
 * (an OSError subclass carrying the errno) so Python sees one exception type.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "mfp_native.h"

/* Zeroing is memory-bound; below this size dropping the GIL costs more than it frees. */
#define RELEASE_GIL_ABOVE (64 * 1024)

PyMODINIT_FUNC PyInit__native(void);

static PyObject *NativeError;

static int check_rc(int rc, const char *what)
{
    if (rc == 0)
        return 0;
    int err = rc < 0 ? -rc : rc;
    PyObject *args = Py_BuildValue("(iss)", err, strerror(err), what);
    if (args != NULL) {
        PyErr_SetObject(NativeError, args);
        Py_DECREF(args);
    }
    return -1;
}

static PyObject *py_secure_zero(PyObject *self, PyObject *obj)
{
    (void)self;
    Py_buffer view;
    /* PyBUF_CONTIG: writable and C-contiguous; bytes and strided views are refused here. */
    if (PyObject_GetBuffer(obj, &view, PyBUF_CONTIG) != 0)
        return NULL;
    int rc;
    size_t len = (size_t)view.len;
    if (len > RELEASE_GIL_ABOVE) {
        /* The exported buffer pins the object (a bytearray cannot resize while exported). */
        Py_BEGIN_ALLOW_THREADS
        rc = mfp_secure_zero(view.buf, len);
        Py_END_ALLOW_THREADS
    } else {
        rc = mfp_secure_zero(view.buf, len);
    }
    PyBuffer_Release(&view);
    if (check_rc(rc, "secure_zero") != 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_crypto_version(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    char buf[256];
    if (check_rc(mfp_crypto_version(buf, sizeof buf), "crypto_version") != 0)
        return NULL;
    return PyUnicode_DecodeASCII(buf, (Py_ssize_t)strlen(buf), "replace");
}

static PyObject *py_crypto_selftest(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = mfp_crypto_selftest();
    Py_END_ALLOW_THREADS
    if (check_rc(rc, "crypto_selftest") != 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"secure_zero", py_secure_zero, METH_O,
     "secure_zero(buffer) -> None\n\nOverwrite a writable, contiguous buffer with zeros "
     "(explicit_bzero; not elided by the compiler)."},
    {"crypto_version", py_crypto_version, METH_NOARGS,
     "crypto_version() -> str\n\nVersion of the system libcrypto the engines are linked against."},
    {"crypto_selftest", py_crypto_selftest, METH_NOARGS,
     "crypto_selftest() -> None\n\nSHA-256 known-answer test through libcrypto EVP; "
     "raises NativeError on mismatch."},
    {NULL, NULL, 0, NULL},
};

static int module_exec(PyObject *m)
{
    NativeError = PyErr_NewExceptionWithDoc("mfpsecd._native.NativeError",
        "A native engine returned an error code (errno in .errno, the call in .filename).",
        PyExc_OSError, NULL);
    if (NativeError == NULL)
        return -1;
    if (PyModule_AddObjectRef(m, "NativeError", NativeError) != 0)
        return -1;
    if (PyModule_AddIntConstant(m, "ABI_VERSION", MFP_NATIVE_ABI_VERSION) != 0)
        return -1;
    return 0;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, (void *)module_exec},
    {0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mfpsecd._native",
    .m_doc = "mfpsecd native engines (C, libcrypto).",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC PyInit__native(void)
{
    return PyModuleDef_Init(&moduledef);
}
