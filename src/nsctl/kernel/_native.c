/*
 * nsctl.kernel._native: the kernel calls nsctl makes in C.  Optional: where it
 * was not built (no compiler or no Python headers), nsctl.kernel.libc falls
 * back to ctypes and nsctl.discovery.tasks to its Python loop.
 *
 * nsfs_mounts: the nsfs mounts of a mount namespace no process is in, listed
 * without entering it (listmount, statmount; see below).
 *
 * fingerprint: what a watcher compares, every maximum age, instead of reading a
 * process again (nsctl.discovery.revalidate); a few dozen system calls per
 * process, made here without Python's wrappers around each (see below).
 *
 * pidfd_getfd, setns, unshare, openat2: the system calls Python 3.11's os module lacks.
 * Through ctypes they cost an import of ctypes on every `nsctl ls` that meets
 * a socket in another process, which is every `nsctl ls` on a real host.
 *
 * scan_tasks: the hot loop of `nsctl ls --threads`.  The worst case named in
 * the namespace relationships interface thread is
 * one process with 60,000 threads, each in a namespace of its own.  Per thread
 * the scan makes 7 system calls (open TID/ns, five readlinks, close) and per
 * new namespace 7 more (open, fstat, NS_GET_ID, NS_GET_USERNS, fstat, close,
 * close).  Python's os wrappers add nearly as much again as the kernel's own
 * time for them (path conversion, str decoding, ints, exceptions).  This makes the same calls, in the same order, with the same
 * outcome as the Python loop in nsctl.discovery.tasks, and calls back into
 * Python for all that builds the model:
 *
 *   scan_tasks(task_fd, tids, links, own, resolved, fast, general, owner, adopt)
 *       -> [(tid, link, inode), ...]  for each link of a thread that differs
 *          from the process's (``own``: the process's link texts as bytes, or
 *          None) and names a namespace that is, or now becomes, resolved.
 *
 *   general(ns_dir_fd, link, inode) -> bool    learn a namespace the general
 *       way: mount namespaces, or every one when ``fast`` is false
 *   owner(user_ns_fd) -> None                  learn an owner not yet resolved
 *   adopt(inode, link, dev, id, owner) -> None record a namespace learned here
 *
 * ``resolved`` is the scan's set of resolved inodes: the callbacks add to it,
 * and it is asked afresh for every link.  A thread that exits mid-read
 * (ENOENT, or EACCES and then gone) is skipped from there on, as in Python;
 * other errors raise OSError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438   /* the same on every architecture */
#endif
#ifndef SYS_openat2
#define SYS_openat2 437       /* the same on every architecture */
#endif

#define NSIO 0xb7
#define NS_GET_USERNS _IO(NSIO, 0x1)
#define NS_GET_ID _IOR(NSIO, 13, unsigned long long)
#define MAX_LINKS 8
#define CHECK_SIGNALS_EVERY 256

struct callbacks {
    PyObject *resolved;   /* set of inodes */
    PyObject *general;
    PyObject *owner;
    PyObject *adopt;
    int fast;
};

/* "uts:[4026532179]" -> 4026532179; 0 if it is not of that shape. */
static unsigned long long link_inode(const char *text)
{
    const char *open = strchr(text, '[');
    if (open == NULL)
        return 0;
    char *end;
    unsigned long long ino = strtoull(open + 1, &end, 10);
    return (*end == ']' && end != open + 1) ? ino : 0;
}

/* The owner of the namespace open at ``fd``: its inode, or None where it is outside
 * our view; learned through the ``owner`` callback if not resolved yet.  NULL on
 * error. */
static PyObject *owner_of(int fd, struct callbacks *cb)
{
    int ufd = ioctl(fd, NS_GET_USERNS);
    if (ufd < 0)
        Py_RETURN_NONE;
    PyObject *owner = NULL;
    struct stat st;
    if (fstat(ufd, &st) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto out;
    }
    owner = PyLong_FromUnsignedLongLong((unsigned long long)st.st_ino);
    if (owner == NULL)
        goto out;
    int known = PySet_Contains(cb->resolved, owner);
    if (known == 0) {
        PyObject *r = PyObject_CallFunction(cb->owner, "i", ufd);
        known = r == NULL ? -1 : 1;
        Py_XDECREF(r);
    }
    if (known < 0)
        Py_CLEAR(owner);
out:
    close(ufd);
    return owner;
}

/* Learn one namespace the fast way: its id and owner (a thread's own namespace
 * types have no parent).  1: learned, 0: skip it (gone, or the thread moved
 * meanwhile), -1: a Python error is set. */
static int learn_fast(int ns_dir, PyObject *link, const char *clink, unsigned long long ino,
                      PyObject *ino_obj, struct callbacks *cb)
{
    int fd = openat(ns_dir, clink, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int ret = -1;
    PyObject *dev = NULL, *id = NULL, *owner = NULL;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto out;
    }
    if ((unsigned long long)st.st_ino != ino) {
        ret = 0;
        goto out;
    }
    unsigned long long nsid;
    if (ioctl(fd, NS_GET_ID, &nsid) == 0) {
        id = PyLong_FromUnsignedLongLong(nsid);
    } else if (errno == ENOTTY || errno == EINVAL || errno == ENOSYS) {
        id = Py_NewRef(Py_None);   /* a kernel before 6.18 */
    } else {
        PyErr_SetFromErrno(PyExc_OSError);
        goto out;
    }
    if (id == NULL || (owner = owner_of(fd, cb)) == NULL)
        goto out;
    dev = PyLong_FromUnsignedLongLong((unsigned long long)st.st_dev);
    if (dev == NULL)
        goto out;
    PyObject *r = PyObject_CallFunctionObjArgs(cb->adopt, ino_obj, link, dev, id, owner, NULL);
    if (r != NULL) {
        Py_DECREF(r);
        ret = 1;
    }
out:
    Py_XDECREF(dev);
    Py_XDECREF(id);
    Py_XDECREF(owner);
    close(fd);
    return ret;
}

/* One link that differs: 1 if it is to be reported, 0 if not, -1 on error. */
static int resolve_link(int ns_dir, PyObject *link, const char *clink, unsigned long long ino,
                        PyObject *ino_obj, struct callbacks *cb)
{
    int known = PySet_Contains(cb->resolved, ino_obj);
    if (known != 0)
        return known;
    if (cb->fast && strcmp(clink, "mnt") != 0)
        return learn_fast(ns_dir, link, clink, ino, ino_obj, cb);
    PyObject *r = PyObject_CallFunction(cb->general, "iOO", ns_dir, link, ino_obj);
    if (r == NULL)
        return -1;
    int ok = PyObject_IsTrue(r);
    Py_DECREF(r);
    return ok;
}

/* After EACCES on a thread's link: whether the thread has exited.  An exiting thread
 * loses its memory before its /proc entry, and meanwhile the kernel's access check
 * on its links fails (seen about once in 80,000 reads of threads that come and go). */
static int thread_gone(int task_fd, long tid)
{
    char name[24];
    struct stat st;
    snprintf(name, sizeof name, "%ld", tid);
    return fstatat(task_fd, name, &st, 0) < 0 && errno == ENOENT;
}

/* Read one thread's links into ``found``.  0, or -1 on error. */
static int scan_one(int task_fd, PyObject *tid, Py_ssize_t nlinks, PyObject **links,
                    const char **clinks, const char **own, Py_ssize_t *own_len,
                    struct callbacks *cb, PyObject *found)
{
    long tid_value = PyLong_AsLong(tid);
    if (tid_value == -1 && PyErr_Occurred())
        return -1;
    char path[32];
    snprintf(path, sizeof path, "%ld/ns", tid_value);
    int ns_dir = openat(task_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ns_dir < 0) {
        if (errno == ENOENT)
            return 0;   /* the thread exited */
        PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
        return -1;
    }
    int ret = 0;
    for (Py_ssize_t k = 0; k < nlinks; k++) {
        char text[64];
        ssize_t n = readlinkat(ns_dir, clinks[k], text, sizeof text - 1);
        if (n < 0) {
            if (errno != ENOENT && !(errno == EACCES && thread_gone(task_fd, tid_value))) {
                PyErr_SetFromErrnoWithFilename(PyExc_OSError, clinks[k]);
                ret = -1;
            }
            break;   /* exited mid-read; what was found stays true of that moment */
        }
        text[n] = '\0';
        if (own[k] != NULL && n == own_len[k] && memcmp(text, own[k], n) == 0)
            continue;
        unsigned long long ino = link_inode(text);
        if (ino == 0) {
            PyErr_Format(PyExc_ValueError, "unexpected namespace link %s", text);
            ret = -1;
            break;
        }
        PyObject *ino_obj = PyLong_FromUnsignedLongLong(ino);
        if (ino_obj == NULL) {
            ret = -1;
            break;
        }
        int take = resolve_link(ns_dir, links[k], clinks[k], ino, ino_obj, cb);
        if (take > 0) {
            PyObject *item = PyTuple_Pack(3, tid, links[k], ino_obj);
            if (item == NULL || PyList_Append(found, item) < 0)
                take = -1;
            Py_XDECREF(item);
        }
        Py_DECREF(ino_obj);
        if (take < 0) {
            ret = -1;
            break;
        }
    }
    close(ns_dir);
    return ret;
}

static PyObject *scan_tasks(PyObject *self, PyObject *args)
{
    int task_fd;
    PyObject *tids, *links_obj, *own_obj;
    struct callbacks cb;
    if (!PyArg_ParseTuple(args, "iO!O!O!O!pOOO", &task_fd, &PyList_Type, &tids,
                          &PyTuple_Type, &links_obj, &PyTuple_Type, &own_obj,
                          &PySet_Type, &cb.resolved, &cb.fast, &cb.general, &cb.owner,
                          &cb.adopt))
        return NULL;
    Py_ssize_t nlinks = PyTuple_GET_SIZE(links_obj);
    if (nlinks > MAX_LINKS || PyTuple_GET_SIZE(own_obj) != nlinks) {
        PyErr_SetString(PyExc_ValueError, "links and own differ in length, or too many");
        return NULL;
    }
    PyObject *links[MAX_LINKS];
    const char *clinks[MAX_LINKS], *own[MAX_LINKS];
    Py_ssize_t own_len[MAX_LINKS];
    for (Py_ssize_t k = 0; k < nlinks; k++) {
        links[k] = PyTuple_GET_ITEM(links_obj, k);
        if ((clinks[k] = PyUnicode_AsUTF8(links[k])) == NULL)
            return NULL;
        PyObject *o = PyTuple_GET_ITEM(own_obj, k);
        own[k] = NULL;
        own_len[k] = 0;
        if (o != Py_None && PyBytes_AsStringAndSize(o, (char **)&own[k], &own_len[k]) < 0)
            return NULL;
    }
    PyObject *found = PyList_New(0);
    if (found == NULL)
        return NULL;
    /* tids is the caller's list: hold it, a callback can't shrink it under us. */
    Py_INCREF(tids);
    Py_ssize_t count = PyList_GET_SIZE(tids);
    for (Py_ssize_t i = 0; i < count && i < PyList_GET_SIZE(tids); i++) {
        if (i % CHECK_SIGNALS_EVERY == CHECK_SIGNALS_EVERY - 1 && PyErr_CheckSignals() < 0)
            goto fail;
        PyObject *tid = PyList_GET_ITEM(tids, i);
        Py_INCREF(tid);
        int r = scan_one(task_fd, tid, nlinks, links, clinks, own, own_len, &cb, found);
        Py_DECREF(tid);
        if (r < 0)
            goto fail;
    }
    Py_DECREF(tids);
    return found;
fail:
    Py_DECREF(tids);
    Py_DECREF(found);
    return NULL;
}

static PyObject *native_pidfd_getfd(PyObject *self, PyObject *args)
{
    int pidfd, targetfd;
    if (!PyArg_ParseTuple(args, "ii", &pidfd, &targetfd))
        return NULL;
    long fd = syscall(SYS_pidfd_getfd, pidfd, targetfd, 0);
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(fd);
}

static PyObject *native_setns(PyObject *self, PyObject *args)
{
    int fd, nstype = 0;
    if (!PyArg_ParseTuple(args, "i|i", &fd, &nstype))
        return NULL;
    if (setns(fd, nstype) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *native_unshare(PyObject *self, PyObject *args)
{
    int flags;
    if (!PyArg_ParseTuple(args, "i", &flags))
        return NULL;
    if (unshare(flags) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *native_prctl(PyObject *self, PyObject *args)
{
    int option;
    unsigned long arg2 = 0, arg3 = 0;
    if (!PyArg_ParseTuple(args, "i|kk", &option, &arg2, &arg3))
        return NULL;
    long ret = syscall(SYS_prctl, option, arg2, arg3, 0UL, 0UL);
    if (ret < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(ret);
}

static PyObject *native_open_by_handle_at(PyObject *self, PyObject *args)
{
    int mount_fd, handle_type, flags;
    const char *bytes;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "iiy#i", &mount_fd, &handle_type, &bytes, &len, &flags))
        return NULL;
    if (len < 0 || len > 128) {
        PyErr_SetString(PyExc_ValueError, "file handle too long");
        return NULL;
    }
    struct { unsigned int handle_bytes; int handle_type; unsigned char f_handle[128]; } fh;
    fh.handle_bytes = (unsigned int)len;
    fh.handle_type = handle_type;
    memcpy(fh.f_handle, bytes, (size_t)len);
    long fd = syscall(SYS_open_by_handle_at, mount_fd, &fh, flags);
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(fd);
}

/* struct open_how of openat2(2), declared here: older headers lack linux/openat2.h. */
struct nsctl_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

static PyObject *native_openat2(PyObject *self, PyObject *args)
{
    int dirfd;
    PyObject *path;
    unsigned long long flags, resolve;
    if (!PyArg_ParseTuple(args, "iO&KK", &dirfd, PyUnicode_FSConverter, &path, &flags,
                          &resolve))
        return NULL;
    struct nsctl_open_how how = {flags, 0, resolve};
    long fd;
    Py_BEGIN_ALLOW_THREADS
    fd = syscall(SYS_openat2, dirfd, PyBytes_AS_STRING(path), &how, sizeof how);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(fd);
}

/*
 * nsfs_mounts(mnt_ns_fd) -> [(root, mount point), ...]: the nsfs mounts of a
 * mount namespace, read without entering it: NS_GET_MNTNS_ID (6.11) names it,
 * listmount(2) lists its mounts and statmount(2) (6.8; another namespace's
 * from 6.11) tells which are nsfs and where.  The same (root, point) pairs its
 * mountinfo shows, unescaped.  OSError as the kernel says (ENOTTY, ENOSYS,
 * EINVAL on older kernels: the caller falls back to entering the namespace).
 * The layouts are the kernel's uapi ones, spelled out so that old headers build.
 */
#define NS_GET_MNTNS_ID _IOR(0xb7, 5, uint64_t)
#define NR_STATMOUNT 457     /* the same on every architecture (asm-generic numbering) */
#define NR_LISTMOUNT 458
#define LSMT_ROOT 0xffffffffffffffffULL
#define STATMOUNT_SB_BASIC 0x1U
#define STATMOUNT_MNT_ROOT 0x8U
#define STATMOUNT_MNT_POINT 0x10U
#define NSFS_MAGIC 0x6e736673ULL
#define STATMOUNT_FIXED 512  /* sizeof(struct statmount); its strings follow */
#define SM_MASK 8            /* offsets in struct statmount */
#define SM_SB_MAGIC 24
#define SM_MNT_ROOT 104
#define SM_MNT_POINT 108
#define MOUNT_IDS 512

struct mnt_id_req_v1 {
    uint32_t size, spare;
    uint64_t mnt_id, param, mnt_ns_id;
};

/* statmount into *buf (grown on EOVERFLOW); -1 with errno set on failure. */
static int stat_mount(uint64_t mnt_id, uint64_t ns_id, uint64_t mask, char **buf,
                      size_t *size)
{
    struct mnt_id_req_v1 req = {sizeof req, 0, mnt_id, mask, ns_id};
    for (;;) {
        if (syscall(NR_STATMOUNT, &req, *buf, *size, 0) == 0)
            return 0;
        if (errno != EOVERFLOW || *size >= (1 << 24))
            return -1;
        char *bigger = PyMem_Realloc(*buf, *size * 2);
        if (bigger == NULL) {
            errno = ENOMEM;
            return -1;
        }
        *buf = bigger;
        *size *= 2;
    }
}

static PyObject *sm_string(const char *buf, size_t size, uint32_t offset)
{
    const char *s = buf + STATMOUNT_FIXED + offset;
    if (STATMOUNT_FIXED + (size_t)offset >= size)
        return PyUnicode_FromString("");
    return PyUnicode_DecodeUTF8(s, strnlen(s, size - STATMOUNT_FIXED - offset),
                                "surrogateescape");
}

static PyObject *nsfs_mounts(PyObject *self, PyObject *args)
{
    int fd;
    if (!PyArg_ParseTuple(args, "i", &fd))
        return NULL;
    uint64_t ns_id;
    if (ioctl(fd, NS_GET_MNTNS_ID, &ns_id) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    uint64_t ids[MOUNT_IDS];
    size_t size = 4096;
    char *buf = PyMem_Malloc(size);
    PyObject *found = PyList_New(0);
    if (buf == NULL || found == NULL)
        goto nomem;
    struct mnt_id_req_v1 req = {sizeof req, 0, LSMT_ROOT, 0, ns_id};
    for (;;) {
        long n = syscall(NR_LISTMOUNT, &req, ids, (size_t)MOUNT_IDS, 0);
        if (n < 0)
            goto oserror;
        for (long i = 0; i < n; i++) {
            /* First the cheap question (which filesystem), the strings only for nsfs. */
            if (stat_mount(ids[i], ns_id, STATMOUNT_SB_BASIC, &buf, &size) < 0) {
                if (errno == ENOENT)
                    continue;   /* unmounted since it was listed */
                goto oserror;
            }
            uint64_t magic;
            memcpy(&magic, buf + SM_SB_MAGIC, sizeof magic);
            if (magic != NSFS_MAGIC)
                continue;
            if (stat_mount(ids[i], ns_id, STATMOUNT_MNT_ROOT | STATMOUNT_MNT_POINT,
                           &buf, &size) < 0) {
                if (errno == ENOENT)
                    continue;
                goto oserror;
            }
            uint64_t mask;
            uint32_t root_at, point_at, total;
            memcpy(&mask, buf + SM_MASK, sizeof mask);
            memcpy(&total, buf, sizeof total);
            memcpy(&root_at, buf + SM_MNT_ROOT, sizeof root_at);
            memcpy(&point_at, buf + SM_MNT_POINT, sizeof point_at);
            if ((mask & (STATMOUNT_MNT_ROOT | STATMOUNT_MNT_POINT)) !=
                    (STATMOUNT_MNT_ROOT | STATMOUNT_MNT_POINT)) {
                errno = EOPNOTSUPP;
                goto oserror;
            }
            size_t used = total < size ? total : size;
            PyObject *root = sm_string(buf, used, root_at);
            PyObject *point = sm_string(buf, used, point_at);
            PyObject *pair = (root && point) ? PyTuple_Pack(2, root, point) : NULL;
            Py_XDECREF(root);
            Py_XDECREF(point);
            if (pair == NULL || PyList_Append(found, pair) < 0) {
                Py_XDECREF(pair);
                goto fail;
            }
            Py_DECREF(pair);
        }
        if (n < MOUNT_IDS)
            break;
        req.param = ids[n - 1];   /* the next page starts after the last id */
    }
    PyMem_Free(buf);
    return found;
oserror:
    PyErr_SetFromErrno(PyExc_OSError);
    goto fail;
nomem:
    PyErr_NoMemory();
fail:
    PyMem_Free(buf);
    Py_XDECREF(found);
    return NULL;
}

/* --- fingerprint: what a watcher compares instead of reading a process again ---------------
 *
 *   fingerprint(proc_fd, pid, self_pid, links, numbered) -> bytes or None
 *
 * The same raw data as nsctl.discovery.revalidate's Python fingerprint, in one
 * buffer: stat up to comm's end and its state, ppid and starttime fields; unless
 * the process is a kernel thread (PF_KTHREAD), for each
 * ns link in ``links`` the identity of the namespace it names (a missing link is
 * a mark), for each fd (unless pid is self_pid) its number and link text, and for
 * a text starting with one of ``numbered`` the identity behind it: the namespace's,
 * or for "socket:[" the socket inode's (inode, ctime), and cmdline; then cgroup
 * and the owner uid of /proc/PID.  None when the process is gone or cannot be read.
 * Equal bytes mean equal reads; nothing here is parsed further.
 *
 * A namespace's identity is its (id, inode) from its nsfs file handle
 * (name_to_handle_at with AT_HANDLE_FID, Linux 6.18): one system call, and an id
 * the kernel never hands out again.  Not its ctime: nsfs makes the inode behind a
 * namespace nobody holds open anew at each lookup, so that ctime moves on every
 * stat.  Where nsfs has no file handles, the inode number alone.
 */
struct fpbuf { char *data; size_t len, cap; int failed; };

static void fp_add(struct fpbuf *b, const void *data, size_t len)
{
    if (b->failed)
        return;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

/* What stat says of the file a link names: its inode, and with ``ctime`` that inode's
 * ctime; a mark when it is gone. 0, or -1 on another error. */
static int fp_stat_link(struct fpbuf *b, int dir_fd, const char *path, int ctime)
{
    struct stat st;
    if (fstatat(dir_fd, path, &st, 0) < 0) {
        if (errno == ENOENT) {
            fp_add(b, "-", 1);
            return 0;
        }
        return -1;
    }
    unsigned long long v[3] = {st.st_ino, (unsigned long long)st.st_ctim.tv_sec,
                               (unsigned long long)st.st_ctim.tv_nsec};
    fp_add(b, v, ctime ? sizeof v : sizeof v[0]);
    return 0;
}

/* (inode, ctime) of the socket a link names: its inode lives as long as it does. */
static int fp_identity(struct fpbuf *b, int dir_fd, const char *path)
{
    return fp_stat_link(b, dir_fd, path, 1);
}

#define FILEID_NSFS 0xf1
#define PF_KTHREAD 0x00200000     /* in /proc/PID/stat's flags: a kernel thread */
#define HANDLE_FID 0x200          /* AT_HANDLE_FID: a handle to tell files apart, not to open */
static int nsfs_handles = 1;      /* 0 once the kernel said it has none */

/* The identity of the namespace a link names: "n" (id, inode) from its file handle,
 * or "i" inode where nsfs has none; a mark when it is gone. 0, or -1 on another error. */
static int fp_ns_identity(struct fpbuf *b, int dir_fd, const char *path)
{
    if (nsfs_handles) {
        struct { unsigned int handle_bytes; int handle_type; unsigned char f_handle[64]; } fh;
        int mount_id;
        fh.handle_bytes = sizeof fh.f_handle;
        if (syscall(SYS_name_to_handle_at, dir_fd, path, &fh, &mount_id,
                    AT_SYMLINK_FOLLOW | HANDLE_FID) == 0) {
            if (fh.handle_type == FILEID_NSFS && fh.handle_bytes >= 16) {
                fp_add(b, "n", 1);
                fp_add(b, fh.f_handle, 16);   /* u64 id, u32 type, u32 inode */
                return 0;
            }
        } else if (errno == ENOENT) {
            fp_add(b, "-", 1);
            return 0;
        } else if (errno != EOPNOTSUPP && errno != EINVAL && errno != ENOSYS &&
                   errno != EOVERFLOW) {
            return -1;
        } else {
            nsfs_handles = 0;
        }
    }
    fp_add(b, "i", 1);
    return fp_stat_link(b, dir_fd, path, 0);
}

/* The whole of a small /proc file, with its length first. */
static int fp_file(struct fpbuf *b, int dir_fd, const char *name)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t start = b->len;
    unsigned long long size = 0;
    fp_add(b, &size, sizeof size);
    char chunk[4096];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        fp_add(b, chunk, (size_t)n);
        size += (unsigned long long)n;
    }
    close(fd);
    if (!b->failed)
        memcpy(b->data + start, &size, sizeof size);
    return 0;
}

static int fp_stat(struct fpbuf *b, int dir_fd, int *kthread_out)
{
    char text[4096];
    int fd = openat(dir_fd, "stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return -1;
    text[n] = 0;
    char *right = strrchr(text, ')');
    if (!right || right[1] != ' ')
        return -1;
    /* fields after comm: 0 state, 1 ppid, ..., 6 flags, ..., 19 starttime */
    char *p = right + 2;
    unsigned long flags = 0;
    for (int field = 0; field <= 6; field++) {
        char *end = strchr(p, ' ');
        if (!end)
            return -1;
        if (field == 6)
            flags = strtoul(p, NULL, 10);
        p = end + 1;
    }
    /* A kernel thread's comm and state say what work it does at the moment
     * (kworker/1:2-events, idle or running): not a change to read it for. */
    int kthread = (flags & PF_KTHREAD) != 0;
    *kthread_out = kthread;
    char *left = strchr(text, '(');
    fp_add(b, text, (size_t)((kthread && left ? left : right) - text));
    p = right + 2;
    for (int field = 0; field <= 19; field++) {
        char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if ((field == 0 && !kthread) || field == 1 || field == 19) {
            fp_add(b, " ", 1);
            fp_add(b, p, len);
        }
        if (!end) {
            if (field < 19)
                return -1;
            break;
        }
        p = end + 1;
    }
    return 0;
}

static int fp_fds(struct fpbuf *b, int dir_fd, char **numbered, Py_ssize_t nnumbered)
{
    int fd_dir = openat(dir_fd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_dir < 0)
        return -1;
    DIR *dir = fdopendir(fd_dir);
    if (!dir) {
        close(fd_dir);
        return -1;
    }
    struct dirent *entry;
    char text[4096];
    int status = 0;
    errno = 0;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
            continue;
        ssize_t n = readlinkat(fd_dir, entry->d_name, text, sizeof text - 1);
        if (n < 0) {
            if (errno == ENOENT)
                continue;   /* closed meanwhile */
            status = -1;
            break;
        }
        text[n] = 0;
        fp_add(b, entry->d_name, strlen(entry->d_name) + 1);
        fp_add(b, text, (size_t)n + 1);
        for (Py_ssize_t i = 0; i < nnumbered; i++) {
            if (strncmp(text, numbered[i], strlen(numbered[i])) == 0) {
                int socket = strcmp(numbered[i], "socket:[") == 0;
                if ((socket ? fp_identity(b, fd_dir, entry->d_name)
                            : fp_ns_identity(b, fd_dir, entry->d_name)) < 0)
                    status = -1;
                break;
            }
        }
        if (status < 0)
            break;
        errno = 0;
    }
    if (status == 0 && errno != 0)
        status = -1;
    closedir(dir);
    return status;
}

static int fp_process(struct fpbuf *b, int proc_fd, long pid, long self_pid, char **links,
                      Py_ssize_t nlinks, char **numbered, Py_ssize_t nnumbered)
{
    char name[32];
    snprintf(name, sizeof name, "%ld", pid);
    int dir_fd = openat(proc_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0)
        return -1;
    int kthread = 0;
    int status = fp_stat(b, dir_fd, &kthread);
    /* A kernel thread is in the initial namespaces for life, with no fds and no
     * command line: only its cgroup and owner can change. */
    if (status == 0 && !kthread) {
        int ns_dir = openat(dir_fd, "ns", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ns_dir < 0)
            status = -1;
        for (Py_ssize_t i = 0; status == 0 && i < nlinks; i++)
            status = fp_ns_identity(b, ns_dir, links[i]);
        if (ns_dir >= 0)
            close(ns_dir);
    }
    fp_add(b, "|", 1);
    if (status == 0 && pid != self_pid && !kthread)
        status = fp_fds(b, dir_fd, numbered, nnumbered);
    fp_add(b, "|", 1);
    if (status == 0 && !kthread)
        status = fp_file(b, dir_fd, "cmdline");
    if (status == 0)
        status = fp_file(b, dir_fd, "cgroup");
    if (status == 0) {
        struct stat st;
        status = fstat(dir_fd, &st);
        if (status == 0)
            fp_add(b, &st.st_uid, sizeof st.st_uid);
    }
    close(dir_fd);
    return status;
}

/* A tuple of str as C strings (pointers into the str objects, which the tuple keeps). */
static char **c_strings(PyObject *tuple, Py_ssize_t *count)
{
    if (!PyTuple_Check(tuple)) {
        PyErr_SetString(PyExc_TypeError, "expected a tuple of str");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(tuple);
    char **out = PyMem_Calloc((size_t)n + 1, sizeof(char *));
    if (!out)
        return (char **)PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *text = PyUnicode_AsUTF8(PyTuple_GET_ITEM(tuple, i));
        if (!text) {
            PyMem_Free(out);
            return NULL;
        }
        out[i] = (char *)text;
    }
    *count = n;
    return out;
}

static PyObject *fingerprint(PyObject *self, PyObject *args)
{
    int proc_fd;
    long pid, self_pid;
    PyObject *links_obj, *numbered_obj;
    if (!PyArg_ParseTuple(args, "illO!O!", &proc_fd, &pid, &self_pid, &PyTuple_Type, &links_obj,
                          &PyTuple_Type, &numbered_obj))
        return NULL;
    Py_ssize_t nlinks = 0, nnumbered = 0;
    char **links = c_strings(links_obj, &nlinks);
    if (!links)
        return NULL;
    char **numbered = c_strings(numbered_obj, &nnumbered);
    if (!numbered) {
        PyMem_Free(links);
        return NULL;
    }
    struct fpbuf b = {NULL, 0, 0, 0};
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = fp_process(&b, proc_fd, pid, self_pid, links, nlinks, numbered, nnumbered);
    Py_END_ALLOW_THREADS
    PyMem_Free(links);
    PyMem_Free(numbered);
    PyObject *result;
    if (b.failed)
        result = PyErr_NoMemory();
    else if (status < 0)
        result = Py_NewRef(Py_None);
    else
        result = PyBytes_FromStringAndSize(b.data ? b.data : "", (Py_ssize_t)b.len);
    free(b.data);
    return result;
}

static PyMethodDef methods[] = {
    {"scan_tasks", scan_tasks, METH_VARARGS,
     "scan_tasks(task_fd, tids, links, own, resolved, fast, general, owner, adopt)\n"
     "--\n\n"
     "The links of each thread that differ from its process's: [(tid, link, inode)].\n"
     "See nsctl.discovery.tasks."},
    {"pidfd_getfd", native_pidfd_getfd, METH_VARARGS,
     "pidfd_getfd(pidfd, targetfd) -> fd: a copy of fd targetfd of the process behind pidfd."},
    {"setns", native_setns, METH_VARARGS,
     "setns(fd, nstype=0): move the calling thread into the namespace behind fd."},
    {"unshare", native_unshare, METH_VARARGS,
     "unshare(flags): move the calling thread into new namespaces (CLONE_NEW*)."},
    {"prctl", native_prctl, METH_VARARGS,
     "prctl(option, arg2=0, arg3=0) -> int: prctl(2) with the later arguments 0."},
    {"open_by_handle_at", native_open_by_handle_at, METH_VARARGS,
     "open_by_handle_at(mount_fd, handle_type, handle, flags) -> fd."},
    {"openat2", native_openat2, METH_VARARGS,
     "openat2(dirfd, path, flags, resolve) -> fd: openat2(2) with the RESOLVE_* flags."},
    {"fingerprint", fingerprint, METH_VARARGS,
     "fingerprint(proc_fd, pid, self_pid, links, numbered) -> bytes or None: the raw data\n"
     "a full read of a process starts from (see nsctl.discovery.revalidate)."},
    {"nsfs_mounts", nsfs_mounts, METH_VARARGS,
     "nsfs_mounts(mnt_ns_fd) -> [(root, mount point)]: the nsfs mounts of a mount\n"
     "namespace (listmount, statmount), read without entering it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "nsctl.kernel._native",
    "The kernel calls nsctl makes in C (optional: nsctl falls back to ctypes and Python).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__native(void)
{
    return PyModule_Create(&module);
}
