/* What the binding's source files share: one error conversion, and each file's part of
 * the module. */
#ifndef MFP_BINDING_H
#define MFP_BINDING_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* 0 for rc == 0; otherwise raises NativeError(errno, strerror, what) and returns -1. */
int mfp_py_check_rc(int rc, const char *what);

/* The overwrite engine (overwritemodule.c): WipeState, the pass and its read-back. */
int mfp_py_overwrite_exec(PyObject *m);

/* The segmented GCM streams and XTS (streammodule.c): types, functions, constants. */
int mfp_py_stream_exec(PyObject *m);

/* Parallel SHA-256 of firmware tree files (hashmodule.c). */
int mfp_py_hash_exec(PyObject *m);

#endif
