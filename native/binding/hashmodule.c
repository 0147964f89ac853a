/*
 * mfpsecd._native, part three: parallel SHA-256 of firmware tree files. The GIL is
 * released while the files are read and hashed.
 */
#include "binding.h"

#include "mfp_native.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* hash_files(dirfd, items, threads, stop_early) -> list of (status, err, size, mode,
 * digest); items: a sequence of (path, expected size or -1, expected digest or None). */
static PyObject *py_hash_files(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "hash_files(dirfd, items, threads, stop_early)");
        return NULL;
    }
    int dirfd = PyObject_AsFileDescriptor(args[0]);
    if (dirfd < 0)
        return NULL;
    unsigned long threads = PyLong_AsUnsignedLong(args[2]);
    int stop_early = PyObject_IsTrue(args[3]);
    if (PyErr_Occurred() || stop_early < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(args[1], "items must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    struct mfp_hash_item *items = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof *items);
    uint8_t *expects = PyMem_Calloc((size_t)(n > 0 ? n : 1), MFP_SHA256_BYTES);
    PyObject *result = NULL;
    if (items == NULL || expects == NULL) {
        PyErr_NoMemory();
        goto out;
    }
    /* The path strings stay owned by seq (kept alive until the end of the call). */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *path = NULL, *expect = NULL;
        long long size = -1;
        if (!PyArg_ParseTuple(t, "ULO", &path, &size, &expect))
            goto out;
        Py_ssize_t len = 0;
        items[i].path = PyUnicode_AsUTF8AndSize(path, &len);
        if (items[i].path == NULL)
            goto out;
        if (strlen(items[i].path) != (size_t)len) {
            PyErr_SetString(PyExc_ValueError, "a path contains NUL");
            goto out;
        }
        items[i].expect_size = size < 0 ? UINT64_MAX : (uint64_t)size;
        if (expect != Py_None) {
            Py_buffer b;
            if (PyObject_GetBuffer(expect, &b, PyBUF_SIMPLE) != 0)
                goto out;
            int okay = b.len == MFP_SHA256_BYTES;
            if (okay)
                memcpy(expects + (size_t)i * MFP_SHA256_BYTES, b.buf, MFP_SHA256_BYTES);
            PyBuffer_Release(&b);
            if (!okay) {
                PyErr_SetString(PyExc_ValueError, "an expected digest must be 32 bytes");
                goto out;
            }
            items[i].expect = expects + (size_t)i * MFP_SHA256_BYTES;
        }
    }
    size_t bad = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = mfp_hash_files(dirfd, items, (size_t)n, (unsigned)threads, stop_early, &bad);
    Py_END_ALLOW_THREADS
    if (rc != 0 && rc != -EBADMSG) {
        (void)mfp_py_check_rc(rc, "hash_files");
        goto out;
    }
    result = PyList_New(n);
    if (result == NULL)
        goto out;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row =
            Py_BuildValue("(iiKIy#)", items[i].status, items[i].err,
                          (unsigned long long)items[i].size, (unsigned int)items[i].mode,
                          (const char *)items[i].digest, (Py_ssize_t)MFP_SHA256_BYTES);
        if (row == NULL) {
            Py_CLEAR(result);
            goto out;
        }
        PyList_SET_ITEM(result, i, row);
    }
out:
    PyMem_Free(items);
    PyMem_Free(expects);
    Py_DECREF(seq);
    return result;
}

static PyMethodDef hash_methods[] = {
    {"hash_files", (PyCFunction)(void (*)(void))py_hash_files, METH_FASTCALL,
     "hash_files(dirfd, items, threads, stop_early) -> list[(status, err, size, mode, "
     "digest)]\n\nSHA-256 of files under the tree open at dirfd (openat2: nothing outside "
     "it, no link followed); items are (path, expected size or -1, expected digest or "
     "None). Statuses are the HASH_* constants."},
    {NULL, NULL, 0, NULL},
};

int mfp_py_hash_exec(PyObject *m)
{
    if (PyModule_AddFunctions(m, hash_methods) != 0)
        return -1;
    static const struct {
        const char *name;
        int value;
    } constants[] = {
        {"HASH_OK", MFP_HASH_OK},           {"HASH_MISMATCH", MFP_HASH_MISMATCH},
        {"HASH_SIZE", MFP_HASH_SIZE},       {"HASH_NOT_REGULAR", MFP_HASH_NOT_REGULAR},
        {"HASH_MISSING", MFP_HASH_MISSING}, {"HASH_ESCAPES", MFP_HASH_ESCAPES},
        {"HASH_SYMLINK", MFP_HASH_SYMLINK}, {"HASH_IO", MFP_HASH_IO},
        {"HASH_SKIPPED", MFP_HASH_SKIPPED},
    };
    for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++)
        if (PyModule_AddIntConstant(m, constants[i].name, constants[i].value) != 0)
            return -1;
    return 0;
}
