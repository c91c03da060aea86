"""The methods of nsctl.model's record classes, generated from their field
tables by scripts/generate-model-methods: do not edit.  nsctl.model uses a
factory only while its table's key is the one in TABLES (else it compiles
the methods)."""


def Reference(scope):
    _default_child = scope['_default_child']
    _default_fd = scope['_default_fd']
    _default_link = scope['_default_link']
    _default_mntns = scope['_default_mntns']
    _default_path = scope['_default_path']
    _default_pid = scope['_default_pid']
    _default_relation = scope['_default_relation']
    _default_socket = scope['_default_socket']
    _default_tid = scope['_default_tid']
    _missing_child = scope['_missing_child']
    _missing_fd = scope['_missing_fd']
    _missing_link = scope['_missing_link']
    _missing_mntns = scope['_missing_mntns']
    _missing_path = scope['_missing_path']
    _missing_pid = scope['_missing_pid']
    _missing_relation = scope['_missing_relation']
    _missing_socket = scope['_missing_socket']
    _missing_tid = scope['_missing_tid']
    def __init__(self, kind, pid=_default_pid, tid=_default_tid, fd=_default_fd, link=_default_link, socket=_default_socket, path=_default_path, mntns=_default_mntns, child=_default_child, relation=_default_relation):
        self.kind = kind
        self.pid = pid
        self.tid = tid
        self.fd = fd
        self.link = link
        self.socket = socket
        self.path = path
        self.mntns = mntns
        self.child = child
        self.relation = relation
    def row(self):
        return (self.kind, self.pid, self.tid, self.fd, self.link, self.socket, self.path, self.mntns, self.child, self.relation, )
    def from_row(cls, row):
        return cls(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9])
    def _fields_dict(self):
        return {'kind': self.kind, 'pid': self.pid, 'tid': self.tid, 'fd': self.fd, 'link': self.link, 'socket': self.socket, 'path': self.path, 'mntns': self.mntns, 'child': self.child, 'relation': self.relation}
    def to_dict(self):
        return {'kind': self.kind, 'pid': self.pid, 'tid': self.tid, 'fd': self.fd, 'link': self.link, 'socket': self.socket, 'path': self.path, 'mntns': self.mntns, 'child': self.child, 'relation': self.relation}
    def from_dict(cls, d):
        return cls(str(d['kind']), d.get('pid', _missing_pid), d.get('tid', _missing_tid), d.get('fd', _missing_fd), d.get('link', _missing_link), d.get('socket', _missing_socket), d.get('path', _missing_path), d.get('mntns', _missing_mntns), d.get('child', _missing_child), d.get('relation', _missing_relation))
    return {'__init__': __init__, 'row': row, 'from_row': from_row, '_fields_dict': _fields_dict, 'to_dict': to_dict, 'from_dict': from_dict}


def ReferenceKinds(scope):
    _ref_sparse = scope['_ref_sparse']
    def dict_process(r):
        pid, link, = r.pid, r.link,
        if pid is None or link is None:
            return _ref_sparse(r, ('pid', 'link'))
        return {'kind': 'process', 'pid': pid, 'link': link}
    def dict_thread(r):
        pid, tid, link, = r.pid, r.tid, r.link,
        if pid is None or tid is None or link is None:
            return _ref_sparse(r, ('pid', 'tid', 'link'))
        return {'kind': 'thread', 'pid': pid, 'tid': tid, 'link': link}
    def dict_fd(r):
        pid, fd, = r.pid, r.fd,
        if pid is None or fd is None:
            return _ref_sparse(r, ('pid', 'fd'))
        return {'kind': 'fd', 'pid': pid, 'fd': fd}
    def dict_socket(r):
        pid, fd, socket, = r.pid, r.fd, r.socket,
        if pid is None or fd is None or socket is None:
            return _ref_sparse(r, ('pid', 'fd', 'socket'))
        return {'kind': 'socket', 'pid': pid, 'fd': fd, 'socket': socket}
    def dict_bindmount(r):
        path, mntns, = r.path, r.mntns,
        if path is None or mntns is None:
            return _ref_sparse(r, ('path', 'mntns'))
        return {'kind': 'bindmount', 'path': path, 'mntns': mntns}
    def dict_child(r):
        child, relation, = r.child, r.relation,
        if child is None or relation is None:
            return _ref_sparse(r, ('child', 'relation'))
        return {'kind': 'child', 'child': child, 'relation': relation}
    def text_process(r):
        pid, link, = r.pid, r.link,
        if pid is None or link is None:
            return None
        return f'{{"kind":"process","pid":{pid},"link":"{link}"}}'
    def text_thread(r):
        pid, tid, link, = r.pid, r.tid, r.link,
        if pid is None or tid is None or link is None:
            return None
        return f'{{"kind":"thread","pid":{pid},"tid":{tid},"link":"{link}"}}'
    def text_fd(r):
        pid, fd, = r.pid, r.fd,
        if pid is None or fd is None:
            return None
        return f'{{"kind":"fd","pid":{pid},"fd":{fd}}}'
    def text_socket(r):
        pid, fd, socket, = r.pid, r.fd, r.socket,
        if pid is None or fd is None or socket is None:
            return None
        return f'{{"kind":"socket","pid":{pid},"fd":{fd},"socket":{socket}}}'
    def text_child(r):
        child, relation, = r.child, r.relation,
        if child is None or relation is None:
            return None
        return f'{{"kind":"child","child":{child},"relation":"{relation}"}}'
    def key_process(r):
        return ('process', r.pid, r.link, )
    def key_thread(r):
        return ('thread', r.pid, r.tid, r.link, )
    def key_fd(r):
        return ('fd', r.pid, r.fd, )
    def key_socket(r):
        return ('socket', r.pid, r.fd, r.socket, )
    def key_bindmount(r):
        return ('bindmount', r.path, r.mntns, )
    def key_child(r):
        return ('child', r.child, r.relation, )
    return {'dict_process': dict_process, 'dict_thread': dict_thread, 'dict_fd': dict_fd, 'dict_socket': dict_socket, 'dict_bindmount': dict_bindmount, 'dict_child': dict_child, 'text_process': text_process, 'text_thread': text_thread, 'text_fd': text_fd, 'text_socket': text_socket, 'text_child': text_child, 'key_process': key_process, 'key_thread': key_thread, 'key_fd': key_fd, 'key_socket': key_socket, 'key_bindmount': key_bindmount, 'key_child': key_child}


def Container(scope):
    _default_image = scope['_default_image']
    _default_name = scope['_default_name']
    _default_pod = scope['_default_pod']
    _default_pod_name = scope['_default_pod_name']
    _default_pod_namespace = scope['_default_pod_namespace']
    _default_project = scope['_default_project']
    _default_service = scope['_default_service']
    _missing_id = scope['_missing_id']
    _missing_image = scope['_missing_image']
    _missing_name = scope['_missing_name']
    _missing_pod = scope['_missing_pod']
    _missing_pod_name = scope['_missing_pod_name']
    _missing_pod_namespace = scope['_missing_pod_namespace']
    _missing_project = scope['_missing_project']
    _missing_service = scope['_missing_service']
    def __init__(self, engine, id, name=_default_name, pod=_default_pod, image=_default_image, project=_default_project, service=_default_service, pod_name=_default_pod_name, pod_namespace=_default_pod_namespace):
        self.engine = engine
        self.id = id
        self.name = name
        self.pod = pod
        self.image = image
        self.project = project
        self.service = service
        self.pod_name = pod_name
        self.pod_namespace = pod_namespace
    def row(self):
        return (self.engine, self.id, self.name, self.pod, self.image, self.project, self.service, self.pod_name, self.pod_namespace, )
    def from_row(cls, row):
        return cls(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8])
    def _fields_dict(self):
        return {'engine': self.engine, 'id': self.id, 'name': self.name, 'pod': self.pod, 'image': self.image, 'project': self.project, 'service': self.service, 'pod_name': self.pod_name, 'pod_namespace': self.pod_namespace}
    def to_dict(self):
        return {'engine': self.engine, 'id': self.id, 'name': self.name, 'pod': self.pod, 'image': self.image, 'project': self.project, 'service': self.service, 'pod_name': self.pod_name, 'pod_namespace': self.pod_namespace}
    def from_dict(cls, d):
        return cls(str(d['engine']), d.get('id', _missing_id), d.get('name', _missing_name), d.get('pod', _missing_pod), d.get('image', _missing_image), d.get('project', _missing_project), d.get('service', _missing_service), d.get('pod_name', _missing_pod_name), d.get('pod_namespace', _missing_pod_namespace))
    def __eq__(self, other):
        return isinstance(other, type(self)) and self.row() == other.row()
    def __hash__(self):
        return hash(self.row())
    return {'__init__': __init__, 'row': row, 'from_row': from_row, '_fields_dict': _fields_dict, 'to_dict': to_dict, 'from_dict': from_dict, '__eq__': __eq__, '__hash__': __hash__}


def Namespace(scope):
    _default_dev = scope['_default_dev']
    _default_id = scope['_default_id']
    _default_owner = scope['_default_owner']
    _default_owner_uid = scope['_default_owner_uid']
    _default_parent = scope['_default_parent']
    _missing_dev = scope['_missing_dev']
    _missing_id = scope['_missing_id']
    _missing_owner = scope['_missing_owner']
    _missing_owner_uid = scope['_missing_owner_uid']
    _missing_parent = scope['_missing_parent']
    def __init__(self, ino, type, dev=_default_dev, id=_default_id, owner=_default_owner, parent=_default_parent, owner_uid=_default_owner_uid):
        self.ino = ino
        self.type = type
        self.dev = dev
        self.id = id
        self.owner = owner
        self.parent = parent
        self.owner_uid = owner_uid
        self.pids = []
        self.refs = []
        self.container = None
    def row(self):
        return (self.ino, self.type, self.dev, self.id, self.owner, self.parent, self.owner_uid, )
    def from_row(cls, row):
        return cls(row[0], row[1], row[2], row[3], row[4], row[5], row[6])
    def _fields_dict(self, hidden, held_by, pids, refs, container):
        return {'ns': self.ino, 'type': self.type, 'dev': self.dev, 'id': self.id, 'owner': self.owner, 'parent': self.parent, 'owner_uid': self.owner_uid, 'hidden': hidden, 'held_by': held_by, 'pids': pids, 'refs': refs, 'container': container}
    def to_dict(self, hidden, held_by, pids, refs, container):
        return {'ns': self.ino, 'type': self.type, 'dev': self.dev, 'id': self.id, 'owner': self.owner, 'parent': self.parent, 'owner_uid': self.owner_uid, 'hidden': hidden, 'held_by': held_by, 'pids': pids, 'refs': refs, 'container': container}
    def from_dict(cls, d):
        return cls(int(d['ns']), str(d['type']), d.get('dev', _missing_dev), d.get('id', _missing_id), d.get('owner', _missing_owner), d.get('parent', _missing_parent), d.get('owner_uid', _missing_owner_uid))
    def _fields_text(self):
        return f'"ns":{self.ino},"type":"{self.type}","dev":{"null" if self.dev is None else self.dev},"id":{"null" if self.id is None else self.id},"owner":{"null" if self.owner is None else self.owner},"parent":{"null" if self.parent is None else self.parent},"owner_uid":{"null" if self.owner_uid is None else self.owner_uid}'
    return {'__init__': __init__, 'row': row, 'from_row': from_row, '_fields_dict': _fields_dict, 'to_dict': to_dict, 'from_dict': from_dict, '_fields_text': _fields_text}


def Process(scope):
    Container = scope['Container']
    _default_container = scope['_default_container']
    _default_nspid = scope['_default_nspid']
    _default_pidfd_ino = scope['_default_pidfd_ino']
    _default_pidns_pending = scope['_default_pidns_pending']
    _default_state = scope['_default_state']
    _missing_container = scope['_missing_container']
    _missing_nspid = scope['_missing_nspid']
    _missing_pidns_pending = scope['_missing_pidns_pending']
    _missing_starttime = scope['_missing_starttime']
    _missing_state = scope['_missing_state']
    def __init__(self, pid, ppid, comm, cmdline, uid, starttime, ns, nspid=_default_nspid, state=_default_state, pidns_pending=_default_pidns_pending, container=_default_container, pidfd_ino=_default_pidfd_ino):
        self.pid = pid
        self.ppid = ppid
        self.comm = comm
        self.cmdline = cmdline
        self.uid = uid
        self.starttime = starttime
        self.ns = ns
        self.nspid = nspid
        self.state = state
        self.pidns_pending = pidns_pending
        self.container = container
        self.pidfd_ino = pidfd_ino
    def row(self):
        return (self.pid, self.ppid, self.comm, self.cmdline, self.uid, self.starttime, self.ns, self.nspid, self.state, self.pidns_pending, (self.container.row() if self.container is not None else None), self.pidfd_ino, )
    def from_row(cls, row):
        return cls(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], (Container.from_row(row[10]) if row[10] is not None else None), row[11])
    def _fields_dict(self):
        return {'pid': self.pid, 'ppid': self.ppid, 'comm': self.comm, 'cmdline': self.cmdline, 'uid': self.uid, 'starttime': self.starttime, 'ns': dict(self.ns), 'nspid': self.nspid, 'state': self.state, 'pidns_pending': self.pidns_pending, 'container': self.container.to_dict() if self.container is not None else None}
    def to_dict(self):
        return {'pid': self.pid, 'ppid': self.ppid, 'comm': self.comm, 'cmdline': self.cmdline, 'uid': self.uid, 'starttime': self.starttime, 'ns': dict(self.ns), 'nspid': self.nspid, 'state': self.state, 'pidns_pending': self.pidns_pending, 'container': self.container.to_dict() if self.container is not None else None}
    def from_dict(cls, d):
        return cls(int(d['pid']), int(d['ppid']), str(d['comm']), list(d['cmdline']), int(d['uid']), int(d.get('starttime', _missing_starttime)), {str(k): int(v) for k, v in d['ns'].items()}, d.get('nspid', _missing_nspid), str(d.get('state', _missing_state)), bool(d.get('pidns_pending', _missing_pidns_pending)), Container.from_dict(d.get('container', _missing_container)) if d.get('container', _missing_container) else None)
    return {'__init__': __init__, 'row': row, 'from_row': from_row, '_fields_dict': _fields_dict, 'to_dict': to_dict, 'from_dict': from_dict}


TABLES = {
    'Reference': "[('kind', 'str', False, 'kind', True, 'None', True, None, 'required', 'required'), ('pid', 'int', True, 'pid', True, 'None', False, None, None, None), ('tid', 'int', True, 'tid', True, 'None', False, None, None, None), ('fd', 'int', True, 'fd', True, 'None', False, None, None, None), ('link', 'str', True, 'link', True, 'None', True, None, None, None), ('socket', 'int', True, 'socket', True, 'None', False, None, None, None), ('path', 'str', True, 'path', True, 'None', False, None, None, None), ('mntns', 'int', True, 'mntns', True, 'None', False, None, None, None), ('child', 'int', True, 'child', True, 'None', False, None, None, None), ('relation', 'str', True, 'relation', True, 'None', True, None, None, None), False, ()]",
    'ReferenceKinds': "[('kind', 'str', False, 'kind', True, 'None', True, None, 'required', 'required'), ('pid', 'int', True, 'pid', True, 'None', False, None, None, None), ('tid', 'int', True, 'tid', True, 'None', False, None, None, None), ('fd', 'int', True, 'fd', True, 'None', False, None, None, None), ('link', 'str', True, 'link', True, 'None', True, None, None, None), ('socket', 'int', True, 'socket', True, 'None', False, None, None, None), ('path', 'str', True, 'path', True, 'None', False, None, None, None), ('mntns', 'int', True, 'mntns', True, 'None', False, None, None, None), ('child', 'int', True, 'child', True, 'None', False, None, None, None), ('relation', 'str', True, 'relation', True, 'None', True, None, None, None), {'process': ('pid', 'link'), 'thread': ('pid', 'tid', 'link'), 'fd': ('pid', 'fd'), 'socket': ('pid', 'fd', 'socket'), 'bindmount': ('path', 'mntns'), 'child': ('child', 'relation')}]",
    'Container': "[('engine', 'str', False, 'engine', True, 'None', False, None, 'required', 'required'), ('id', 'str', True, 'id', True, 'None', False, None, 'required', 'required'), ('name', 'str', True, 'name', True, 'None', False, None, None, None), ('pod', 'str', True, 'pod', True, 'None', False, None, None, None), ('image', 'str', True, 'image', True, 'None', False, None, None, None), ('project', 'str', True, 'project', True, 'None', False, None, None, None), ('service', 'str', True, 'service', True, 'None', False, None, None, None), ('pod_name', 'str', True, 'pod_name', True, 'None', False, None, None, None), ('pod_namespace', 'str', True, 'pod_namespace', True, 'None', False, None, None, None), True, ()]",
    'Namespace': "[('ino', 'int', False, 'ns', True, 'None', False, None, 'required', 'required'), ('type', 'str', False, 'type', True, 'None', True, None, 'required', 'required'), ('dev', 'int', True, 'dev', True, 'None', False, None, None, None), ('id', 'int', True, 'id', True, 'None', False, None, None, None), ('owner', 'int', True, 'owner', True, 'None', False, None, None, None), ('parent', 'int', True, 'parent', True, 'None', False, None, None, None), ('owner_uid', 'int', True, 'owner_uid', True, 'None', False, None, None, None), ('pids', 'list[int]', False, None, False, '[]', False, None, 'required', 'required'), ('refs', 'list[Reference]', False, None, False, '[]', False, None, 'required', 'required'), ('container', 'Container', True, None, False, 'None', False, 'Container', 'required', 'required'), False, ('hidden', 'held_by', 'pids', 'refs', 'container')]",
    'Process': "[('pid', 'int', False, 'pid', True, 'None', False, None, 'required', 'required'), ('ppid', 'int', False, 'ppid', True, 'None', False, None, 'required', 'required'), ('comm', 'str', False, 'comm', True, 'None', False, None, 'required', 'required'), ('cmdline', 'list[str]', False, 'cmdline', True, 'None', False, None, 'required', 'required'), ('uid', 'int', False, 'uid', True, 'None', False, None, 'required', 'required'), ('starttime', 'int', False, 'starttime', True, 'None', False, None, 'required', 0), ('ns', 'dict[str, int]', False, 'ns', True, 'None', False, None, 'required', 'required'), ('nspid', 'list[int]', True, 'nspid', True, 'None', False, None, None, None), ('state', 'str', False, 'state', True, 'None', False, None, '', ''), ('pidns_pending', 'bool', False, 'pidns_pending', True, 'None', False, None, False, False), ('container', 'Container', True, 'container', True, 'None', False, 'Container', None, None), ('pidfd_ino', 'int', True, None, True, 'None', False, None, None, None), False, ()]",
}
