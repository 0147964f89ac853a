/*
 * mfpsecd._native: thin CPython binding over native/include/mfp_native.h.
 * Every engine return code goes through mfp_py_check_rc(), which raises NativeError
 * (an OSError subclass carrying the errno) so Python sees one exception type.
 */
#include "binding.h"

#include "mfp_native.h"

#include <errno.h>
#include <string.h>

/* Zeroing is memory-bound; below this size dropping the GIL costs more than it frees. */
#define RELEASE_GIL_ABOVE (64 * 1024)

PyMODINIT_FUNC PyInit__native(void);

static PyObject *NativeError;

int mfp_py_check_rc(int rc, const char *what)
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
    if (mfp_py_check_rc(rc, "secure_zero") != 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_crypto_version(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    char buf[256];
    if (mfp_py_check_rc(mfp_crypto_version(buf, sizeof buf), "crypto_version") != 0)
        return NULL;
    return PyUnicode_DecodeASCII(buf, (Py_ssize_t)strlen(buf), "replace");
}

static PyObject *py_crypto_selftests(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    size_t n = mfp_selftest_count();
    PyObject *names = PyTuple_New((Py_ssize_t)n);
    if (names == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *name = PyUnicode_FromString(mfp_selftest_name(i));
        if (name == NULL) {
            Py_DECREF(names);
            return NULL;
        }
        PyTuple_SET_ITEM(names, (Py_ssize_t)i, name);
    }
    return names;
}

static PyObject *py_crypto_selftest(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_ssize_t index = PyLong_AsSsize_t(arg);
    if (index == -1 && PyErr_Occurred())
        return NULL;
    if (index < 0) {
        (void)mfp_py_check_rc(-EINVAL, "crypto_selftest");
        return NULL;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = mfp_selftest_run((size_t)index);
    Py_END_ALLOW_THREADS
    if (mfp_py_check_rc(rc, "crypto_selftest") != 0)
        return NULL;
    Py_RETURN_NONE;
}

/* Buffers for the AEAD calls: read-only inputs, one writable contiguous output. */
struct aead_buffers {
    Py_buffer key, nonce, aad, in, out;
    int held; /* how many of the above are acquired, in order */
};

static void aead_release(struct aead_buffers *b)
{
    Py_buffer *all[] = {&b->key, &b->nonce, &b->aad, &b->in, &b->out};
    for (int i = 0; i < b->held; i++)
        PyBuffer_Release(all[i]);
    b->held = 0;
}

static int aead_acquire(struct aead_buffers *b, PyObject *const *args, Py_ssize_t nargs,
                        const char *name)
{
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "%s() takes 5 arguments (%zd given)", name, nargs);
        return -1;
    }
    Py_buffer *all[] = {&b->key, &b->nonce, &b->aad, &b->in, &b->out};
    b->held = 0;
    for (int i = 0; i < 5; i++) {
        int flags = i == 4 ? PyBUF_CONTIG : PyBUF_CONTIG_RO;
        if (PyObject_GetBuffer(args[i], all[i], flags) != 0) {
            aead_release(b);
            return -1;
        }
        b->held++;
    }
    if (b->key.len != MFP_AES256_KEY_BYTES || b->nonce.len != MFP_GCM_NONCE_BYTES) {
        aead_release(b);
        PyErr_SetString(PyExc_ValueError, "key must be 32 bytes and nonce 12 bytes");
        return -1;
    }
    return 0;
}

static PyObject *py_aes256gcm_seal(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    struct aead_buffers b;
    if (aead_acquire(&b, args, nargs, "aes256gcm_seal") != 0)
        return NULL;
    if (b.out.len != b.in.len + MFP_GCM_TAG_BYTES) {
        aead_release(&b);
        PyErr_SetString(PyExc_ValueError, "out must be len(plaintext) + 16 bytes");
        return NULL;
    }
    size_t len = (size_t)b.in.len;
    uint8_t *out = b.out.buf;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = mfp_aes256gcm_seal(b.key.buf, b.nonce.buf, b.aad.buf, (size_t)b.aad.len, b.in.buf, len,
                            out, out + len);
    Py_END_ALLOW_THREADS
    aead_release(&b);
    if (mfp_py_check_rc(rc, "aes256gcm_seal") != 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_aes256gcm_open(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    struct aead_buffers b;
    if (aead_acquire(&b, args, nargs, "aes256gcm_open") != 0)
        return NULL;
    if (b.in.len < MFP_GCM_TAG_BYTES || b.out.len != b.in.len - MFP_GCM_TAG_BYTES) {
        aead_release(&b);
        PyErr_SetString(PyExc_ValueError, "out must be len(sealed) - 16 bytes");
        return NULL;
    }
    size_t len = (size_t)b.out.len;
    const uint8_t *in = b.in.buf;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = mfp_aes256gcm_open(b.key.buf, b.nonce.buf, b.aad.buf, (size_t)b.aad.len, in, len, in + len,
                            b.out.buf);
    Py_END_ALLOW_THREADS
    aead_release(&b);
    if (mfp_py_check_rc(rc, "aes256gcm_open") != 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_xor(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "xor() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    Py_buffer dst, a, b;
    if (PyObject_GetBuffer(args[0], &dst, PyBUF_CONTIG) != 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &a, PyBUF_CONTIG_RO) != 0) {
        PyBuffer_Release(&dst);
        return NULL;
    }
    if (PyObject_GetBuffer(args[2], &b, PyBUF_CONTIG_RO) != 0) {
        PyBuffer_Release(&a);
        PyBuffer_Release(&dst);
        return NULL;
    }
    int rc = -EINVAL;
    if (dst.len == a.len && a.len == b.len)
        rc = mfp_xor(dst.buf, a.buf, b.buf, (size_t)dst.len);
    PyBuffer_Release(&b);
    PyBuffer_Release(&a);
    PyBuffer_Release(&dst);
    if (mfp_py_check_rc(rc, "xor") != 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_random_into(PyObject *self, PyObject *obj)
{
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_CONTIG) != 0)
        return NULL;
    int rc = mfp_random(view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    if (mfp_py_check_rc(rc, "random") != 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_rsa_oaep_encrypt(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "rsa_oaep_sha256_encrypt() takes 3 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    Py_buffer der, label, msg;
    if (PyObject_GetBuffer(args[0], &der, PyBUF_CONTIG_RO) != 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &label, PyBUF_CONTIG_RO) != 0) {
        PyBuffer_Release(&der);
        return NULL;
    }
    if (PyObject_GetBuffer(args[2], &msg, PyBUF_CONTIG_RO) != 0) {
        PyBuffer_Release(&label);
        PyBuffer_Release(&der);
        return NULL;
    }
    uint8_t out[1024]; /* up to RSA-8192 */
    size_t out_len = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = mfp_rsa_oaep_sha256_encrypt(der.buf, (size_t)der.len, label.buf, (size_t)label.len,
                                     msg.buf, (size_t)msg.len, out, sizeof out, &out_len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&msg);
    PyBuffer_Release(&label);
    PyBuffer_Release(&der);
    if (mfp_py_check_rc(rc, "rsa_oaep_sha256_encrypt") != 0)
        return NULL;
    /* The ciphertext is not secret: bytes is fine. */
    return PyBytes_FromStringAndSize((const char *)out, (Py_ssize_t)out_len);
}

static PyObject *py_audit_chain(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "audit_chain() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    unsigned long long first_seq = PyLong_AsUnsignedLongLong(args[1]);
    if (first_seq == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    Py_buffer start;
    if (PyObject_GetBuffer(args[2], &start, PyBUF_CONTIG_RO) != 0)
        return NULL;
    uint8_t hash[MFP_SHA256_BYTES];
    int ok = start.len == MFP_SHA256_BYTES;
    if (ok)
        memcpy(hash, start.buf, MFP_SHA256_BYTES);
    PyBuffer_Release(&start);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "the starting hash is 32 bytes");
        return NULL;
    }
    /* A tuple copy: the records cannot be swapped out while the GIL is released. */
    PyObject *tuple = PySequence_Tuple(args[0]);
    if (tuple == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(tuple);
    const uint8_t **ptrs = PyMem_Calloc((size_t)n + 1, sizeof *ptrs);
    size_t *lens = PyMem_Calloc((size_t)n + 1, sizeof *lens);
    if (ptrs == NULL || lens == NULL) {
        PyMem_Free(ptrs);
        PyMem_Free(lens);
        Py_DECREF(tuple);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        if (!PyBytes_Check(item)) {
            PyMem_Free(ptrs);
            PyMem_Free(lens);
            Py_DECREF(tuple);
            PyErr_SetString(PyExc_TypeError, "records must be bytes");
            return NULL;
        }
        ptrs[i] = (const uint8_t *)PyBytes_AS_STRING(item);
        lens[i] = (size_t)PyBytes_GET_SIZE(item);
    }
    size_t bad = 0;
    int kind = 0, rc;
    Py_BEGIN_ALLOW_THREADS
    rc = mfp_audit_chain(ptrs, lens, (size_t)n, (uint64_t)first_seq, hash, &bad, &kind);
    Py_END_ALLOW_THREADS
    PyMem_Free(ptrs);
    PyMem_Free(lens);
    Py_DECREF(tuple);
    if (rc != 0 && rc != -EBADMSG) {
        mfp_py_check_rc(rc, "audit_chain");
        return NULL;
    }
    return Py_BuildValue("(iny#)", kind, (Py_ssize_t)bad, (const char *)hash,
                         (Py_ssize_t)MFP_SHA256_BYTES);
}

static PyObject *py_argon2id_into(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer pwd, salt, out;
    /* Costs come from files (a key backup's header) before anything is authenticated:
     * "n" is overflow-checked, unlike "I", which would wrap 2^32 + 1 to 1. */
    Py_ssize_t t_arg, m_arg, lanes_arg;
    if (!PyArg_ParseTuple(args, "y*y*nnnw*:argon2id_into", &pwd, &salt, &t_arg, &m_arg, &lanes_arg,
                          &out))
        return NULL;
    if (t_arg < 1 || t_arg > (Py_ssize_t)UINT32_MAX || m_arg < 1 ||
        m_arg > (Py_ssize_t)UINT32_MAX || lanes_arg < 1 || lanes_arg > (Py_ssize_t)UINT32_MAX) {
        PyBuffer_Release(&pwd);
        PyBuffer_Release(&salt);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "argon2id: a cost out of range");
        return NULL;
    }
    uint32_t t_cost = (uint32_t)t_arg, m_cost_kib = (uint32_t)m_arg, lanes = (uint32_t)lanes_arg;
    int rc;
    /* The exported buffers pin their objects: a bytearray cannot resize meanwhile. */
    Py_BEGIN_ALLOW_THREADS
    rc = mfp_argon2id(pwd.buf, (size_t)pwd.len, salt.buf, (size_t)salt.len, t_cost, m_cost_kib,
                      lanes, out.buf, (size_t)out.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&pwd);
    PyBuffer_Release(&salt);
    PyBuffer_Release(&out);
    if (mfp_py_check_rc(rc, "argon2id") != 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"argon2id_into", py_argon2id_into, METH_VARARGS,
     "argon2id_into(password, salt, t_cost, m_cost_kib, lanes, out) -> None\n\nArgon2id v1.3 "
     "(libargon2) of the password, read in place, into the writable buffer out (its length "
     "is the output length). Releases the GIL."},
    {"secure_zero", py_secure_zero, METH_O,
     "secure_zero(buffer) -> None\n\nOverwrite a writable, contiguous buffer with zeros "
     "(explicit_bzero; not elided by the compiler)."},
    {"crypto_version", py_crypto_version, METH_NOARGS,
     "crypto_version() -> str\n\nVersion of the system libcrypto the engines are linked against."},
    {"crypto_selftests", py_crypto_selftests, METH_NOARGS,
     "crypto_selftests() -> tuple[str, ...]\n\nNames of the engines' power-on known-answer "
     "tests, in the order they run."},
    {"crypto_selftest", py_crypto_selftest, METH_O,
     "crypto_selftest(index) -> None\n\nRun one known-answer test; raises NativeError "
     "(errno EIO: a wrong answer) when it fails."},
    {"aes256gcm_seal", (PyCFunction)(void (*)(void))py_aes256gcm_seal, METH_FASTCALL,
     "aes256gcm_seal(key, nonce, aad, plaintext, out) -> None\n\nAES-256-GCM: writes "
     "ciphertext || 16-byte tag into out (len(plaintext) + 16 bytes)."},
    {"aes256gcm_open", (PyCFunction)(void (*)(void))py_aes256gcm_open, METH_FASTCALL,
     "aes256gcm_open(key, nonce, aad, sealed, out) -> None\n\nAES-256-GCM: checks the tag "
     "and writes the plaintext into out (len(sealed) - 16 bytes); NativeError(EBADMSG) and a "
     "zeroed out when anything was altered."},
    {"xor", (PyCFunction)(void (*)(void))py_xor, METH_FASTCALL,
     "xor(dst, a, b) -> None\n\ndst = a XOR b, all the same length (dst may be a or b)."},
    {"random_into", py_random_into, METH_O,
     "random_into(buffer) -> None\n\nFill a writable buffer from libcrypto's private DRBG "
     "(SP 800-90A CTR_DRBG, seeded from getrandom)."},
    {"rsa_oaep_sha256_encrypt", (PyCFunction)(void (*)(void))py_rsa_oaep_encrypt, METH_FASTCALL,
     "rsa_oaep_sha256_encrypt(spki_der, label, message) -> bytes\n\nRSA-OAEP (SHA-256, "
     "MGF1-SHA-256) under a DER SubjectPublicKeyInfo; the message may be a bytearray."},
    {"audit_chain", (PyCFunction)(void (*)(void))py_audit_chain, METH_FASTCALL,
     "audit_chain(records, first_seq, start_hash) -> (kind, index, hash)\n\nWalk the audit "
     "hash chain in C (GIL released). kind 0: all link and hash is the final chain hash; "
     "1 unreadable, 2 wrong sequence number, 3 broken link, at records[index]."},
    {NULL, NULL, 0, NULL},
};

static int module_exec(PyObject *m)
{
    NativeError = PyErr_NewExceptionWithDoc(
        "mfpsecd._native.NativeError",
        "A native engine returned an error code (errno in .errno, the call in .filename).",
        PyExc_OSError, NULL);
    if (NativeError == NULL)
        return -1;
    if (PyModule_AddObjectRef(m, "NativeError", NativeError) != 0)
        return -1;
    if (PyModule_AddIntConstant(m, "ABI_VERSION", MFP_NATIVE_ABI_VERSION) != 0)
        return -1;
    if (mfp_py_overwrite_exec(m) != 0)
        return -1;
    if (mfp_py_stream_exec(m) != 0)
        return -1;
    return mfp_py_hash_exec(m);
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
