/* Optional compiled fast path for mcollective_py.marshal.loads (Ruby Marshal 4.8 decoder).
 *
 * Contract: fast_loads(data, max_depth, max_length, max_items, max_expansion) returns either
 * exactly the value the pure-Python decoder (marshal._decode) returns for the same input and
 * limits, or the FALLBACK sentinel.  It never raises and never guesses: anything outside the
 * subset below, any malformed or truncated input, any limit reached, any failed C-API call
 * (MemoryError included) gives FALLBACK, and marshal.loads then runs the pure decoder, which
 * produces the value or the MarshalError.  So "correct" here means "same as pure, or
 * FALLBACK".
 *
 * Subset: the 04 08 header; nil/true/false; Fixnum 'i'; Bignum 'l' of at most 8 bytes;
 * binary String '"'; 'I"' String with exactly one ivar, E true/false; 'I/' Regexp with
 * the same ivar; Symbol ':' (ASCII) and symbol link ';'; Array '['; Hash '{'; object link
 * '@' (not to an object still being read: no cycles); Float 'f' in the textual forms Ruby
 * writes.  Everything else ('}', 'I:', 'encoding' ivars, 'o', 'u', ...) is FALLBACK.
 *
 * The limits and the link/expansion accounting are the pure decoder's, check for check
 * (see _decode and _rlink in marshal.py); where a check would cost (the hash-flooding count
 * of numeric keys per Python hash value), a stricter one is used instead (more than 32
 * numeric keys in one Hash at all => FALLBACK).
 *
 * Memory safety: every read is bounds-checked against the input length; lengths and counts
 * are at most 32-bit on the wire and all arithmetic is in 64-bit integers with limits
 * clamped to 2**60; nesting uses a heap stack (no C recursion); every reference is owned by
 * exactly one of: the object table, the symbol table, a stack frame, or a local that is
 * released on every exit path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

typedef long long i64;

#define LIMIT_CLAMP ((i64)1 << 60)
#define MAX_SAME_NUMERIC 32  /* marshal._MAX_SAME_HASH: we count all numeric keys instead */
#define MAX_FLOAT_TEXT 64    /* marshal._MAX_FLOAT_TEXT */

/* Set by configure(): the types and the symbol cache of mcollective_py.marshal. */
static PyObject *Fallback = NULL;
static PyObject *SymbolType = NULL;
static PyObject *AsciiType = NULL;
static PyObject *RegexpType = NULL;
static PyObject *SymCache = NULL; /* marshal._SYMBOL_CACHE, a dict name -> Symbol */
static Py_ssize_t SymCacheMax = 0;
static Py_ssize_t SymCacheNameMax = 0;

enum { M_ROOT = 0, M_ARRAY = 1, M_HASH = 2 };

typedef struct {
    PyObject *cur;   /* owned: the open container (NULL for the root frame) */
    PyObject *key;   /* owned: the Hash key waiting for its value, or NULL */
    int mode;
    i64 left;        /* values still to place */
    i64 cn;          /* declared entries */
    i64 spent;       /* declared + linked items when the container began */
    Py_ssize_t cidx; /* its object index */
    int numeric;     /* numeric keys seen (Hash) */
} Frame;

typedef struct {
    const unsigned char *d;
    Py_ssize_t len;
    Py_ssize_t pos;
    PyObject **objs; /* owned refs; NULL = still being read */
    i64 *sizes;      /* expanded size of a closed container, -1 otherwise */
    Py_ssize_t nobjs, capobjs;
    PyObject **syms; /* owned refs */
    Py_ssize_t nsyms, capsyms;
    Frame *frames;
    Py_ssize_t capframes;
    Py_ssize_t depth; /* frames[0..depth] are live; frames[0] is the root */
    i64 max_depth, max_length, max_items, max_expansion;
    i64 declared; /* Array elements + Hash keys and values declared so far */
    i64 linked;   /* items added by links so far */
} R;

/* ---------------------------------------------------------------------------- tables */

static int
objs_push(R *r, PyObject *o) /* o: a new ref or NULL (pending); the table takes it */
{
    if (r->nobjs == r->capobjs) {
        Py_ssize_t cap = r->capobjs ? r->capobjs * 2 : 64;
        if (cap > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(i64)) {
            Py_XDECREF(o);
            return -1;
        }
        PyObject **no = PyMem_Realloc(r->objs, (size_t)cap * sizeof(PyObject *));
        if (no == NULL) {
            Py_XDECREF(o);
            return -1;
        }
        r->objs = no;
        i64 *ns = PyMem_Realloc(r->sizes, (size_t)cap * sizeof(i64));
        if (ns == NULL) {
            Py_XDECREF(o);
            return -1;
        }
        r->sizes = ns;
        r->capobjs = cap;
    }
    r->objs[r->nobjs] = o;
    r->sizes[r->nobjs] = -1;
    r->nobjs++;
    return 0;
}

/* v (a new ref, or NULL after a failed creation) entered in the object table as well: the
   caller keeps its ref. v, or NULL (v's ref released) when v was NULL or the table could not
   grow. */
static PyObject *
objs_keep(R *r, PyObject *v)
{
    if (v == NULL)
        return NULL;
    Py_INCREF(v);
    if (objs_push(r, v) < 0) {
        Py_DECREF(v);
        return NULL;
    }
    return v;
}

static int
syms_push(R *r, PyObject *s) /* s: borrowed; the table takes a new ref */
{
    if (r->nsyms == r->capsyms) {
        Py_ssize_t cap = r->capsyms ? r->capsyms * 2 : 32;
        PyObject **ns = PyMem_Realloc(r->syms, (size_t)cap * sizeof(PyObject *));
        if (ns == NULL)
            return -1;
        r->syms = ns;
        r->capsyms = cap;
    }
    Py_INCREF(s);
    r->syms[r->nsyms++] = s;
    return 0;
}

static int
frames_reserve(R *r, Py_ssize_t n)
{
    if (n < r->capframes)
        return 0;
    Py_ssize_t cap = r->capframes ? r->capframes * 2 : 16;
    while (cap <= n)
        cap *= 2;
    Frame *nf = PyMem_Realloc(r->frames, (size_t)cap * sizeof(Frame));
    if (nf == NULL)
        return -1;
    r->frames = nf;
    r->capframes = cap;
    return 0;
}

/* ---------------------------------------------------------------------------- readers */

/* A w_long (marshal._rlong).  0 on success, -1 when the input ends. */
static int
rlong(R *r, i64 *out)
{
    if (r->pos >= r->len)
        return -1;
    int c = r->d[r->pos++];
    if (c == 0) {
        *out = 0;
        return 0;
    }
    if (c < 128) {
        if (c > 4) {
            *out = c - 5;
            return 0;
        }
        if (r->len - r->pos < c)
            return -1;
        i64 x = 0;
        for (int i = 0; i < c; i++)
            x |= (i64)r->d[r->pos + i] << (8 * i);
        r->pos += c;
        *out = x;
        return 0;
    }
    if (c < 252) {
        *out = c - 251;
        return 0;
    }
    int k = 256 - c;
    if (r->len - r->pos < k)
        return -1;
    i64 x = 0;
    for (int i = 0; i < k; i++)
        x |= (i64)r->d[r->pos + i] << (8 * i);
    r->pos += k;
    *out = x - ((i64)1 << (8 * k));
    return 0;
}

/* A byte length (marshal._rlen): non-negative, within max_length and the input. */
static int
rlen(R *r, i64 *out)
{
    i64 n;
    if (rlong(r, &n) < 0 || n < 0 || n > r->max_length || n > (i64)(r->len - r->pos))
        return -1;
    *out = n;
    return 0;
}

/* A new Symbol from ':' (the byte after ':' at r->pos); a new ref, or NULL. */
static PyObject *
read_new_symbol(R *r)
{
    i64 n;
    if (rlen(r, &n) < 0)
        return NULL;
    const unsigned char *s = r->d + r->pos;
    for (i64 i = 0; i < n; i++)
        if (s[i] >= 0x80)
            return NULL; /* not ASCII: pure refuses it */
    r->pos += (Py_ssize_t)n;
    PyObject *name = PyUnicode_DecodeASCII((const char *)s, (Py_ssize_t)n, "strict");
    if (name == NULL)
        return NULL;
    PyObject *sym = PyDict_GetItemWithError(SymCache, name); /* borrowed */
    if (sym != NULL) {
        Py_INCREF(sym);
    }
    else {
        if (PyErr_Occurred()) {
            Py_DECREF(name);
            return NULL;
        }
        sym = PyObject_CallOneArg(SymbolType, name);
        if (sym == NULL) {
            Py_DECREF(name);
            return NULL;
        }
        if (n <= SymCacheNameMax) {
            if (PyDict_GET_SIZE(SymCache) >= SymCacheMax)
                PyDict_Clear(SymCache);
            if (PyDict_SetItem(SymCache, name, sym) < 0) {
                Py_DECREF(name);
                Py_DECREF(sym);
                return NULL;
            }
        }
    }
    Py_DECREF(name);
    if (syms_push(r, sym) < 0) {
        Py_DECREF(sym);
        return NULL;
    }
    return sym;
}

/* A Symbol (':' or ';') at r->pos; a new ref, or NULL. */
static PyObject *
read_symbol(R *r)
{
    if (r->pos >= r->len)
        return NULL;
    int t = r->d[r->pos++];
    if (t == ':')
        return read_new_symbol(r);
    if (t == ';') {
        i64 i;
        if (rlong(r, &i) < 0 || i < 0 || i >= r->nsyms)
            return NULL;
        PyObject *s = r->syms[i];
        Py_INCREF(s);
        return s;
    }
    return NULL;
}

/* The ivar list of a String or Regexp: exactly one, E true/false (marshal._rivars).
 * 1 for true (UTF-8), 0 for false (US-ASCII), -1 otherwise. */
static int
read_e_ivar(R *r)
{
    i64 n;
    /* pure: the depth check of _rivars (only reachable with max_depth < 0), then _rcount */
    if (r->depth > r->max_depth || r->max_items < 2 || rlong(r, &n) < 0 || n != 1)
        return -1;
    PyObject *name = read_symbol(r);
    if (name == NULL)
        return -1;
    int isE = PyUnicode_GET_LENGTH(name) == 1 && PyUnicode_READ_CHAR(name, 0) == 'E';
    Py_DECREF(name);
    if (!isE || r->pos >= r->len)
        return -1;
    int v = r->d[r->pos++];
    if (v == 'T')
        return 1;
    if (v == 'F')
        return 0;
    return -1;
}

/* marshal._FLOAT_RE: -?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?, or a special. */
static int
float_text_ok(const unsigned char *s, Py_ssize_t n)
{
    if ((n == 3 && (memcmp(s, "nan", 3) == 0 || memcmp(s, "inf", 3) == 0)) ||
        (n == 4 && memcmp(s, "-inf", 4) == 0))
        return 1;
    Py_ssize_t i = 0, d1 = 0, d2 = 0;
    if (i < n && s[i] == '-')
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        i++;
        d1++;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            d2++;
        }
    }
    if (d1 == 0 && d2 == 0)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        Py_ssize_t d3 = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            d3++;
        }
        if (d3 == 0)
            return 0;
    }
    return i == n;
}

/* '@' link (the byte after '@' at r->pos): marshal._rlink, with its accounting. */
static PyObject *
read_link(R *r)
{
    i64 i;
    if (rlong(r, &i) < 0 || i < 0 || i >= r->nobjs)
        return NULL;
    PyObject *o = r->objs[i];
    if (o == NULL)
        return NULL; /* still being read: a cycle */
    i64 size = r->sizes[i];
    if (size < 0) {
        if (PyUnicode_Check(o))
            size = 1 + PyUnicode_GET_LENGTH(o) / 64;
        else if (PyBytes_Check(o))
            size = 1 + PyBytes_GET_SIZE(o) / 64;
        else
            size = 1;
    }
    r->linked += size;
    if (r->linked > r->max_expansion)
        return NULL;
    Py_INCREF(o);
    return o;
}

/* Any value but an Array or Hash, at r->pos: a new ref, or NULL for FALLBACK. */
static PyObject *
read_scalar(R *r)
{
    if (r->pos >= r->len)
        return NULL;
    int t = r->d[r->pos++];
    switch (t) {
    case '0':
        Py_RETURN_NONE;
    case 'T':
        Py_RETURN_TRUE;
    case 'F':
        Py_RETURN_FALSE;
    case 'i': {
        i64 v;
        if (rlong(r, &v) < 0)
            return NULL;
        return PyLong_FromLongLong(v);
    }
    case ':':
        return read_new_symbol(r);
    case ';': {
        r->pos--;
        return read_symbol(r);
    }
    case '@':
        return read_link(r);
    case '"': {
        i64 n;
        if (rlen(r, &n) < 0)
            return NULL;
        PyObject *b = PyBytes_FromStringAndSize((const char *)r->d + r->pos, (Py_ssize_t)n);
        if (b == NULL)
            return NULL;
        r->pos += (Py_ssize_t)n;
        return objs_keep(r, b);
    }
    case 'I': {
        if (r->pos >= r->len)
            return NULL;
        int u = r->d[r->pos++];
        if (u != '"' && u != '/')
            return NULL;
        i64 n;
        if (rlen(r, &n) < 0)
            return NULL;
        const char *s = (const char *)r->d + r->pos;
        r->pos += (Py_ssize_t)n;
        int options = 0;
        if (u == '/') {
            if (r->pos >= r->len)
                return NULL;
            options = r->d[r->pos++];
        }
        Py_ssize_t idx = r->nobjs;
        if (objs_push(r, NULL) < 0)
            return NULL;
        int utf8 = read_e_ivar(r);
        if (utf8 < 0)
            return NULL;
        PyObject *v;
        if (u == '"') {
            if (utf8) {
                v = PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, "surrogateescape");
            }
            else {
                PyObject *text = PyUnicode_DecodeASCII(s, (Py_ssize_t)n, "surrogateescape");
                if (text == NULL)
                    return NULL;
                v = PyObject_CallOneArg(AsciiType, text);
                Py_DECREF(text);
            }
        }
        else {
            PyObject *src = utf8 ? PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, "strict")
                                 : PyUnicode_DecodeASCII(s, (Py_ssize_t)n, "strict");
            if (src == NULL)
                return NULL;
            PyObject *opt = PyLong_FromLong(options);
            if (opt == NULL) {
                Py_DECREF(src);
                return NULL;
            }
            v = PyObject_CallFunctionObjArgs(RegexpType, src, opt, utf8 ? Py_False : Py_True,
                                             NULL);
            Py_DECREF(src);
            Py_DECREF(opt);
        }
        if (v == NULL)
            return NULL;
        Py_INCREF(v);
        r->objs[idx] = v;
        return v;
    }
    case 'l': {
        if (r->pos >= r->len)
            return NULL;
        int sign = r->d[r->pos++];
        if (sign != '+' && sign != '-')
            return NULL;
        i64 shorts;
        if (rlong(r, &shorts) < 0 || shorts < 0 || 2 * shorts > r->max_length || shorts > 4 ||
            2 * shorts > (i64)(r->len - r->pos))
            return NULL;
        unsigned long long m = 0;
        for (i64 i = 0; i < 2 * shorts; i++)
            m |= (unsigned long long)r->d[r->pos + i] << (8 * i);
        r->pos += (Py_ssize_t)(2 * shorts);
        PyObject *v = PyLong_FromUnsignedLongLong(m);
        if (v != NULL && sign == '-') {
            PyObject *neg = PyNumber_Negative(v);
            Py_DECREF(v);
            v = neg;
        }
        return objs_keep(r, v);
    }
    case 'f': {
        i64 n;
        if (rlen(r, &n) < 0 || n > MAX_FLOAT_TEXT)
            return NULL;
        const unsigned char *s = r->d + r->pos;
        if (!float_text_ok(s, (Py_ssize_t)n))
            return NULL;
        char buf[MAX_FLOAT_TEXT + 1];
        memcpy(buf, s, (size_t)n);
        buf[n] = '\0';
        char *end = NULL;
        double x = PyOS_string_to_double(buf, &end, NULL);
        if ((x == -1.0 && PyErr_Occurred()) || end != buf + n)
            return NULL;
        r->pos += (Py_ssize_t)n;
        return objs_keep(r, PyFloat_FromDouble(x));
    }
    default:
        return NULL;
    }
}

/* ---------------------------------------------------------------------------- the loop */

static i64
limit_arg(PyObject *o, int *ok)
{
    if (!PyLong_Check(o)) {
        *ok = 0;
        return 0;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        *ok = 0;
        return 0;
    }
    if (overflow > 0 || v > LIMIT_CLAMP)
        return LIMIT_CLAMP;
    if (overflow < 0 || v < -LIMIT_CLAMP)
        return -LIMIT_CLAMP;
    return v;
}

/* The decode proper: a new ref to the value, or NULL for FALLBACK (error state may be set). */
static PyObject *
decode(R *r)
{
    if (frames_reserve(r, 1) < 0)
        return NULL;
    Py_ssize_t depth = 0;
    Frame *f = &r->frames[0];
    memset(f, 0, sizeof(Frame));
    f->mode = M_ROOT;
    r->pos = 2;
    PyObject *v = NULL;

    for (;;) {
        if (f->mode == M_HASH) {
            if (r->pos >= r->len)
                return NULL;
            int t = r->d[r->pos];
            if (t == '[' || t == '{' || t == '}')
                return NULL;
            PyObject *key = read_scalar(r);
            if (key == NULL)
                return NULL;
            f->key = key;
            if (PyLong_CheckExact(key) || PyFloat_CheckExact(key)) {
                if (++f->numeric > MAX_SAME_NUMERIC)
                    return NULL;
            }
        }
        if (r->pos >= r->len)
            return NULL;
        int t = r->d[r->pos];
        if (t == '[' || t == '{') {
            i64 per = t == '[' ? 1 : 2;
            r->pos++;
            i64 n;
            if (rlong(r, &n) < 0 || n < 0 || n * per > (i64)(r->len - r->pos))
                return NULL;
            r->declared += n * per;
            if (r->declared > r->max_items || r->max_items - r->declared < r->linked)
                return NULL;
            if (depth >= r->max_depth)
                return NULL;
            PyObject *c = t == '[' ? PyList_New(0) : PyDict_New();
            if (c == NULL)
                return NULL;
            if (n) {
                if (frames_reserve(r, depth + 1) < 0) {
                    Py_DECREF(c);
                    return NULL;
                }
                Py_ssize_t cidx = r->nobjs;
                if (objs_push(r, NULL) < 0) {
                    Py_DECREF(c);
                    return NULL;
                }
                depth++;
                r->depth = depth;
                f = &r->frames[depth];
                f->cur = c;
                f->key = NULL;
                f->mode = t == '[' ? M_ARRAY : M_HASH;
                f->left = f->cn = n;
                f->spent = r->declared - n * per + r->linked;
                f->cidx = cidx;
                f->numeric = 0;
                continue;
            }
            v = objs_keep(r, c);
            if (v == NULL)
                return NULL;
        }
        else {
            v = read_scalar(r);
            if (v == NULL)
                return NULL;
        }

        /* Place v in the open container, and close every container this completes. */
        for (;;) {
            if (f->mode == M_HASH) {
                int rc = PyDict_SetItem(f->cur, f->key, v);
                Py_DECREF(v);
                Py_CLEAR(f->key);
                if (rc < 0)
                    return NULL;
            }
            else if (f->mode == M_ARRAY) {
                int rc = PyList_Append(f->cur, v);
                Py_DECREF(v);
                if (rc < 0)
                    return NULL;
            }
            else {
                if (r->pos != r->len) {
                    Py_DECREF(v);
                    return NULL;
                }
                return v;
            }
            v = NULL;
            if (--f->left)
                break;
            if (f->mode == M_HASH && PyDict_GET_SIZE(f->cur) != f->cn)
                return NULL;
            r->objs[f->cidx] = f->cur; /* the table takes the frame's ref */
            r->sizes[f->cidx] = r->declared + r->linked - f->spent;
            v = f->cur;
            Py_INCREF(v);
            f->cur = NULL;
            depth--;
            r->depth = depth;
            f = &r->frames[depth];
        }
    }
}

static void
release(R *r)
{
    if (r->frames != NULL) {
        for (Py_ssize_t i = 0; i <= r->depth; i++) {
            Py_XDECREF(r->frames[i].cur);
            Py_XDECREF(r->frames[i].key);
        }
    }
    for (Py_ssize_t i = 0; i < r->nobjs; i++)
        Py_XDECREF(r->objs[i]);
    for (Py_ssize_t i = 0; i < r->nsyms; i++)
        Py_DECREF(r->syms[i]);
    PyMem_Free(r->objs);
    PyMem_Free(r->sizes);
    PyMem_Free(r->syms);
    PyMem_Free(r->frames);
}

static PyObject *
fast_loads(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 5 || SymCache == NULL || !PyBytes_CheckExact(args[0]))
        return Py_NewRef(Fallback);
    int ok = 1;
    R r;
    memset(&r, 0, sizeof(r));
    r.max_depth = limit_arg(args[1], &ok);
    r.max_length = limit_arg(args[2], &ok);
    r.max_items = limit_arg(args[3], &ok);
    r.max_expansion = limit_arg(args[4], &ok);
    r.d = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    r.len = PyBytes_GET_SIZE(args[0]);
    if (!ok || r.len < 3 || r.d[0] != 4 || r.d[1] != 8)
        return Py_NewRef(Fallback);
    PyObject *v = decode(&r);
    release(&r);
    if (v == NULL) {
        PyErr_Clear();
        return Py_NewRef(Fallback);
    }
    return v;
}

static PyObject *
configure(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *sym, *ascii, *regexp, *cache;
    Py_ssize_t cmax, cname;
    if (!PyArg_ParseTuple(args, "OOOO!nn:configure", &sym, &ascii, &regexp, &PyDict_Type, &cache,
                          &cmax, &cname))
        return NULL;
    if (!PyType_Check(sym) || !PyType_IsSubtype((PyTypeObject *)sym, &PyUnicode_Type) ||
        !PyType_Check(ascii) || !PyType_IsSubtype((PyTypeObject *)ascii, &PyUnicode_Type) ||
        !PyType_Check(regexp)) {
        PyErr_SetString(PyExc_TypeError, "configure() needs the Symbol, AsciiString and Regexp types");
        return NULL;
    }
    Py_XSETREF(SymbolType, Py_NewRef(sym));
    Py_XSETREF(AsciiType, Py_NewRef(ascii));
    Py_XSETREF(RegexpType, Py_NewRef(regexp));
    Py_XSETREF(SymCache, Py_NewRef(cache));
    SymCacheMax = cmax;
    SymCacheNameMax = cname;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"fast_loads", (PyCFunction)(void (*)(void))fast_loads, METH_FASTCALL,
     "fast_loads(data, max_depth, max_length, max_items, max_expansion) -> value or FALLBACK\n\n"
     "The value marshal's pure decoder gives for data, or FALLBACK when data is outside the\n"
     "fast subset, malformed, or over a limit. Never raises."},
    {"configure", configure, METH_VARARGS,
     "configure(Symbol, AsciiString, Regexp, symbol_cache, cache_max, cache_name_max)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cmarshal",
    "Compiled fast path of mcollective_py.marshal.loads (see marshal's docstring).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__cmarshal(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (Fallback == NULL) {
        Fallback = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
        if (Fallback == NULL) {
            Py_DECREF(m);
            return NULL;
        }
    }
    if (PyModule_AddObjectRef(m, "FALLBACK", Fallback) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
