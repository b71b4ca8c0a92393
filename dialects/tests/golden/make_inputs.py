#!/usr/bin/env python3
"""Writes the golden inputs <vendor>.in.jsonl (long keys and values, and the
rate-limit bursts, are easier to generate than to type). The .out.jsonl files
come from the replay binary and are checked by hand against the vendor docs:
  for v in tencent easemob agora_chat netease zego; do
    cargo run -q -p roomstate-dialects --bin roomstate-replay -- \
      dialects/tests/golden/$v.in.jsonl > dialects/tests/golden/$v.out.jsonl
  done
"""
import json, os

HERE = os.path.dirname(os.path.abspath(__file__))


def dump(name, lines):
    with open(os.path.join(HERE, name + ".in.jsonl"), "w") as f:
        for line in lines:
            f.write(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False, separators=(",", ":")))
            f.write("\n")


def ctl(v, c, room, **kw):
    return {"vendor": v, "control": c, "room": room, **kw}


# ---------------------------------------------------------------- Tencent
T = "tencent"
TP = "/v4/live_engine_http_srv/"
Q = {"sdkappid": "88888888", "identifier": "administrator", "usersig": "xxx", "random": "99999999", "contenttype": "json"}


def tx(api, body, now=None, query=Q):
    line = {"vendor": T, "method": "POST", "path": TP + api, "query": query, "body": body}
    if now is not None:
        line["now"] = now
    return line


def md(*pairs):
    return [{"Key": k, "Value": v} for k, v in pairs]


t = [
    ctl(T, "create_room", "live-room", creator="host"),
    ctl(T, "create_room", "live-room", creator="host"),  # 100003
    tx("set_room_metadata", {"RoomId": "live-room", "Metadata": md(("key1", "value1"), ("key2", "value2"))}),
    tx("get_room_metadata", {"RoomId": "live-room"}),
    tx("get_room_metadata", {"RoomId": "live-room", "Keys": ["key2", "nokey"]}),
    tx("set_room_metadata", {"RoomId": "live-room", "Metadata": md(("key1", "value1b"))}),  # update in place
    tx("set_room_metadata", {"RoomId": "live-room", "Metadata": md(*[("k%d" % i, "v") for i in range(11)])}),  # 11 ops: 100002
    tx("set_room_metadata", {"RoomId": "live-room", "Metadata": md(("k" * 51, "v"))}),  # key 51 B: 100002
    tx("set_room_metadata", {"RoomId": "live-room", "Metadata": md(("k" * 50, "v"))}),  # key 50 B: OK
    tx("set_room_metadata", {"RoomId": "live-room", "Metadata": md(("key3", "v" * 2049))}),  # 100501
    tx("set_room_metadata", {"RoomId": "live-room", "Metadata": md(("key3", "v" * 2048))}),  # OK
    # atomic: one bad op rejects the batch, key4 is not written
    tx("set_room_metadata", {"RoomId": "live-room", "Metadata": md(("key4", "ok"), ("key5", "v" * 2049))}),
    tx("get_room_metadata", {"RoomId": "live-room", "Keys": ["key4"]}),
    # key count: 4 keys now, 6 more make 10, the 11th is 100500
    tx("set_room_metadata", {"RoomId": "live-room", "Metadata": md(*[("c%d" % i, "v") for i in range(6)])}),
    tx("set_room_metadata", {"RoomId": "live-room", "Metadata": md(("c6", "v"))}),
    # total size: 8 x 2048 B = 16384 B is allowed, one more byte is 100502
    ctl(T, "create_room", "big-room", creator="host"),
    tx("set_room_metadata", {"RoomId": "big-room", "Metadata": md(*[("b%d" % i, "x" * 2048) for i in range(8)])}),
    tx("set_room_metadata", {"RoomId": "big-room", "Metadata": md(("b8", "x"))}),
    # a non-admin identifier may not touch the admin's keys: 100006
    tx("set_room_metadata", {"RoomId": "live-room", "Metadata": md(("key1", "mine"))}, query={"identifier": "alice"}),
    tx("del_room_metadata", {"RoomId": "live-room", "Keys": ["key1"]}, query={"identifier": "alice"}),
    # delete: best effort, 100503 only when nothing could be deleted
    tx("del_room_metadata", {"RoomId": "live-room", "Keys": ["key2", "nokey"]}),
    tx("get_room_metadata", {"RoomId": "live-room", "Keys": ["key1", "key2"]}),
    tx("del_room_metadata", {"RoomId": "live-room", "Keys": ["nokey"]}),
    tx("del_room_metadata", {"RoomId": "live-room"}),  # Keys missing: 100002
    tx("del_room_metadata", {"RoomId": "live-room", "Keys": []}),  # 100002
    # the longer name is an alias; identifier "admin" is not an admin identifier (a user): 100006
    tx("delete_room_metadata", {"RoomId": "live-room", "Keys": ["key3"]}, query={"identifier": "admin"}),
    tx("delete_room_metadata", {"RoomId": "live-room", "Keys": ["key3"]}),
    # unknown room, wrong types, missing fields
    tx("set_room_metadata", {"RoomId": "no-room", "Metadata": md(("a", "b"))}),
    tx("set_room_metadata", {"RoomId": 42, "Metadata": md(("a", "b"))}),
    tx("set_room_metadata", {"RoomId": "live-room"}),
    tx("set_room_metadata", {"RoomId": "live-room", "Metadata": [{"Key": "a"}]}),
    tx("set_room_metadata", {"RoomId": "live-room", "Metadata": [{"Key": "a", "Value": 1}]}),
    tx("get_room_metadata", {"RoomId": "live-room", "Keys": "key1"}),
    tx("get_room_metadata", ["not", "an", "object"]),
    {"vendor": T, "method": "POST", "path": TP + "get_room_metadata"},
    # unknown path and wrong method: 404
    tx("destroy_room_metadata", {"RoomId": "live-room"}),
    {"vendor": T, "method": "GET", "path": TP + "get_room_metadata", "body": {"RoomId": "live-room"}},
    # malformed JSON still gets Tencent's parameter error
    '{"vendor": "tencent", "method": "POST", "path": "/v4/live_engine_http_srv/get_room_metad',
    # rate limit: 200 requests/s; at a new second the bucket is full again
] + [tx("get_room_metadata", {"RoomId": "live-room", "Keys": ["key1"]}, now=10_000) for _ in range(200)] + [
    tx("get_room_metadata", {"RoomId": "live-room", "Keys": ["key1"]}),  # 201st in the same ms: 100001
    tx("get_room_metadata", {"RoomId": "live-room", "Keys": ["key1"]}, now=10_005),  # 5 ms refill one token
]
dump(T, t)

# ---------------------------------------------------------------- Easemob / Agora Chat


def em_lines(V, vmax):
    R = "662XXXX13"
    base = "/XXXX/XXXX/metadata/chatroom/"

    def put(user, body, forced=False, room=R, now=None):
        line = {"vendor": V, "method": "PUT", "path": base + room + "/user/" + user + ("/forced" if forced else ""), "body": body}
        if now is not None:
            line["now"] = now
        return line

    def delete(user, body, forced=False, room=R):
        return {"vendor": V, "method": "DELETE", "path": base + room + "/user/" + user + ("/forced" if forced else ""), "body": body}

    def get(body=None, room=R, now=None):
        line = {"vendor": V, "method": "POST", "path": base + room}
        if body is not None:
            line["body"] = body
        if now is not None:
            line["now"] = now
        return line

    return [
        ctl(V, "create_room", R, creator="user1", now=1720769458000),
        ctl(V, "join", R, user="user1"),
        ctl(V, "join", R, user="user2"),
        put("user1", {"metaData": {"key1": "value1", "key2": "value2"}, "autoDelete": "DELETE"}),
        get(),
        # user2 may not overwrite user1's key, but may add its own: partial success
        put("user2", {"metaData": {"key1": "stolen", "key3": "value3"}}),
        # the forced API may, and user2 becomes the owner
        put("user2", {"metaData": {"key1": "forced"}}, forced=True),
        # per-key validation: length, charset, value size (partial success, 200)
        put("user1", {"metaData": {"k" * 129: "v", "bad key!": "v", "k" * 128: "v"}}),
        put("user1", {"metaData": {"big": "v" * (vmax + 1), "fits": "v" * vmax}}),
        # request-level errors
        put("user1", {"metaData": {"m%d" % i: "v" for i in range(11)}}),  # 400 batch size
        put("user3", {"metaData": {"key9": "v"}}),  # 401 not in chatroom
        put("user3", {"metaData": {"key9": "v"}}, forced=True),  # 401 too
        put("user1", {"metaData": {}}),  # 400
        put("user1", {"metaData": {"a": "v"}, "autoDelete": "MAYBE"}),  # 400
        put("user1", {"metaData": {"a": 1}}),  # 400
        put("user1", {"metaData": "key=value"}),  # 400
        put("user1", {"metaData": {"a": "v"}}, room="no-room"),  # 404
        # get: all, some, unknown room
        get({"keys": ["key1", "nokey"]}),
        get({"keys": []}),
        get({"keys": "key1"}),
        get(room="no-room"),
        # delete: own keys only; forced delete any
        delete("user1", {"keys": ["key2", "key1", "nokey"]}),
        delete("user1", {"keys": ["key1", "nokey"]}, forced=True),
        delete("user1", {"keys": ["d%d" % i for i in range(11)]}),  # 400 batch size
        delete("user1", {}),  # 400 keys required
        delete("user3", {"keys": ["key3"]}),  # 401
        # a forced delete needs no membership (Easemob's Java SDK sends it as "admin")
        delete("admin", {"keys": ["key3", "nokey"]}, forced=True),
        get(),
        # auto-delete on exit: DELETE is the default, NO_DELETE keeps the key
        put("user1", {"metaData": {"seat1": "user1"}}),
        put("user1", {"metaData": {"keep": "user1"}, "autoDelete": "NO_DELETE"}),
        ctl(V, "leave", R, user="user1"),
        get(),
        # 100 keys per room: the 101st fails per key
        ctl(V, "create_room", "full-room", creator="owner"),
        ctl(V, "join", "full-room", user="owner"),
    ] + [
        put("owner", {"metaData": {"f%02d" % (10 * b + i): "v" for i in range(10)}}, room="full-room")
        for b in range(10)
    ] + [
        put("owner", {"metaData": {"f00": "updated", "f100": "v"}}, room="full-room"),
        # rate limit: 100 requests/s per app key
    ] + [get({"keys": ["f00"]}, room="full-room", now=1720769470000) for _ in range(100)] + [
        get({"keys": ["f00"]}, room="full-room"),  # 429
        # unknown paths, wrong method, malformed JSON
        {"vendor": V, "method": "GET", "path": base + R},
        {"vendor": V, "method": "POST", "path": base + R + "/user/user1"},
        {"vendor": V, "method": "PUT", "path": "/XXXX/XXXX/metadata/group/1/user/user1", "body": {"metaData": {"a": "b"}}},
        '{"vendor":"%s","method":"PUT","path":"%s", "body": {"metaData": {' % (V, base + R + "/user/user1"),
    ]


dump("easemob", em_lines("easemob", 4096))
dump("agora_chat", em_lines("agora_chat", 4086))

# ---------------------------------------------------------------- NetEase
N = "netease"


def ne(api, form, now=None):
    line = {"vendor": N, "method": "POST", "path": "/nimserver/chatroom/%s.action" % api, "form": form}
    if now is not None:
        line["now"] = now
    return line


def elems(items):
    return json.dumps(items, ensure_ascii=False)


n = [
    ctl(N, "create_room", "36", creator="host"),
    ctl(N, "create_room", "36", creator="host"),  # exists
    ne("queueOffer", {"roomid": "36", "key": "1111", "value": "66666"}),
    ne("queueOffer", {"roomid": "36", "key": "33333", "value": "33333", "operator": "host"}),
    ne("queueList", {"roomid": "36"}),
    # transient needs the operator in the room: 302
    ne("queueOffer", {"roomid": "36", "key": "t1", "value": "v", "transient": "true"}),
    ctl(N, "join", "36", user="user01"),
    ne("queueOffer", {"roomid": "36", "key": "t1", "value": "v", "transient": "true", "operator": "user01"}),
    # unknown operator account: 404
    ne("queueOffer", {"roomid": "36", "key": "x", "value": "v", "operator": "ghost"}),
    # parameter errors: 414
    ne("queueOffer", {"roomid": "37", "key": "1111", "value": "66666"}),
    ne("queueOffer", {"roomid": "abc", "key": "1111", "value": "66666"}),
    ne("queueOffer", {"roomid": "36", "value": "66666"}),
    ne("queueOffer", {"roomid": "36", "key": "k" * 129, "value": "v"}),
    ne("queueOffer", {"roomid": "36", "key": "k", "value": "v" * 4097}),
    ne("queueOffer", {"roomid": "36", "key": "k", "value": "v", "transient": "yes"}),
    # 1 and 0 are booleans too: 1 is transient (302: the operator is not in the room), 0 is not
    ne("queueOffer", {"roomid": "36", "key": "b1", "value": "v", "transient": "1"}),
    ne("queueOffer", {"roomid": "36", "key": "b0", "value": "v", "transient": "0"}),
    ne("queueOffer", {"roomid": "036", "key": "k" * 128, "value": "v" * 4096}),  # limits are inclusive; 036 is 36
    # batch offer: success, partial (failedKeys), errors
    ne("queueBatchOffer", {"roomid": "36", "operator": "user01", "transient": "false", "needNotify": "false",
                           "elements": elems([{"key": "key01", "value": "{\"priority\":10}", "accid": "user01", "transient": True}])}),
    ne("queueBatchOffer", {"roomid": "36", "operator": "user01",
                           "elements": elems([{"key": "key02", "value": "a"}, {"key": "key03", "value": "b", "accid": "stranger"},
                                              {"key": "key04", "value": "c", "accid": "host"}])}),
    ne("queueBatchOffer", {"roomid": "36", "elements": elems([{"key": "e%d" % i, "value": "v"} for i in range(21)])}),
    ne("queueBatchOffer", {"roomid": "36", "elements": "[]"}),
    ne("queueBatchOffer", {"roomid": "36", "elements": "[{\"key\": \"a\""}),
    ne("queueBatchOffer", {"roomid": "36", "elements": elems([{"key": "a", "value": 5}])}),
    ne("queueBatchOffer", {"roomid": "36", "elements": elems([{"key": "a", "value": "v"}]), "notifyExt": "x" * 2049}),
    ne("queueBatchOffer", {"roomid": "36", "elements": elems([{"key": "a", "value": "v"}]), "operator": "ghost"}),
    # batch update: creator or manager only (403), reports missing keys
    ne("queueBatchUpdateElements", {"roomid": "36", "operator": "host", "elements": elems({"k1": "v1", "1111": "v2"})}),
    ne("queueBatchUpdateElements", {"roomid": "36", "operator": "host", "elements": elems({"1111": "v3"})}),
    ne("queueBatchUpdateElements", {"roomid": "36", "operator": "user01", "elements": elems({"1111": "v4"})}),
    ctl(N, "set_role", "36", user="user01", role="admin"),
    ne("queueBatchUpdateElements", {"roomid": "36", "operator": "user01", "elements": elems({"1111": "v4"})}),
    ne("queueBatchUpdateElements", {"roomid": "36", "elements": elems({"1111": "v5"})}),
    ne("queueBatchUpdateElements", {"roomid": "36", "operator": "host", "elements": elems(["1111"])}),
    ne("queueBatchUpdateElements", {"roomid": "36", "operator": "host", "elements": elems({"u%d" % i: "v" for i in range(201)})}),
    ne("queueList", {"roomid": "36"}),
    # multi-get: asked order, existing only, at most 100 keys
    ne("queueMultiGet", {"roomid": "36", "keys": elems(["key01", "nokey", "1111"])}),
    ne("queueMultiGet", {"roomid": "36", "keys": elems(["g%d" % i for i in range(101)])}),
    ne("queueMultiGet", {"roomid": "36", "keys": "key01"}),
    # poll: named, head, missing (404), empty queue (404)
    ne("queuePoll", {"roomid": "36", "key": "1111"}),
    ne("queuePoll", {"roomid": "36", "key": "1111"}),
    ne("queuePoll", {"roomid": "36"}),
    # the owner leaving removes its transient elements (t1, key01)
    ne("queueList", {"roomid": "36"}),
    ctl(N, "leave", "36", user="user01"),
    ne("queueList", {"roomid": "36"}),
    # init with a capacity, a full queue, drop
    ctl(N, "create_room", "64", creator="host"),
    ne("queueInit", {"roomid": "64", "sizeLimit": "2"}),
    ne("queueOffer", {"roomid": "64", "key": "a", "value": "1"}),
    ne("queueOffer", {"roomid": "64", "key": "b", "value": "2"}),
    ne("queueOffer", {"roomid": "64", "key": "c", "value": "3"}),
    ne("queueOffer", {"roomid": "64", "key": "a", "value": "1b"}),  # update in place fits
    ne("queueInit", {"roomid": "64", "sizeLimit": "1"}),  # below the length
    ne("queueInit", {"roomid": "64", "sizeLimit": "0"}),
    ne("queueInit", {"roomid": "64", "sizeLimit": "many"}),
    ne("queuePoll", {"roomid": "64"}),
    ne("queueDrop", {"roomid": "64"}),
    ne("queueList", {"roomid": "64"}),
    ne("queuePoll", {"roomid": "64"}),
    # notification flow: 10 high-priority per second per room, then 416 (policy 1) or downgrade (policy 0)
] + [ne("queueOffer", {"roomid": "64", "key": "h%d" % i, "value": "v", "highPriority": "1", "highPriorityPolicy": "1"}, now=5000)
     for i in range(10)] + [
    ne("queueOffer", {"roomid": "64", "key": "h10", "value": "v", "highPriority": "1", "highPriorityPolicy": "1"}),
    ne("queueOffer", {"roomid": "64", "key": "h10", "value": "v", "highPriority": "1", "highPriorityPolicy": "0"}),
    ne("queueOffer", {"roomid": "64", "key": "h11", "value": "v", "highPriority": "1", "highPriorityPolicy": "1"}, now=6000),
    ne("queueOffer", {"roomid": "64", "key": "h12", "value": "v", "highPriority": "2"}),
    # unknown paths, wrong method, wrong form types, malformed JSON
    ne("queueClear", {"roomid": "36"}),
    {"vendor": N, "method": "GET", "path": "/nimserver/chatroom/queueList.action", "form": {"roomid": "36"}},
    {"vendor": N, "method": "POST", "path": "/nimserver/chatroom/queueList.action", "form": {"roomid": ["36"]}},
    {"vendor": N, "method": "POST", "path": "/nimserver/chatroom/queueList.action", "form": {"roomid": 36}},
    {"vendor": N, "method": "POST", "path": "/nimserver/chatroom/queueList.action", "form": {"roomid": "99999999999999999999"}},
    '{"vendor":"netease","method":"POST","path":"/nimserver/chatroom/queueList.action","form":{"roomid":"36"',
]
dump(N, n)

# ---------------------------------------------------------------- ZEGO
Z = "zego"


def zm(room, user, attrs, now=None):
    line = {"vendor": Z, "method": "POST", "path": "/", "query": {"Action": "ModifyRoomAttribute"},
            "body": {"RoomId": room, "FromUserId": user, "Attributes": attrs}}
    if now is not None:
        line["now"] = now
    return line


def zq(room, now=None):
    line = {"vendor": Z, "method": "POST", "path": "/", "query": {"Action": "QueryRoomAttributes"}, "body": {"RoomId": room}}
    if now is not None:
        line["now"] = now
    return line


def s(key, value, **kw):
    return {"Action": 0, "Key": key, "Value": value, **kw}


def dl(key, **kw):
    return {"Action": 1, "Key": key, **kw}


z = [
    ctl(Z, "create_room", "room123", creator="host"),
    zm("room123", "fromUserId", [s("attribute1", "value1", AutoDelete=1), {"Action": 1, "Key": "attribute2", "Value": "", "AutoDelete": 0}]),
    zq("room123"),
    # StopOnError=0 (default): every attribute is tried
    zm("room123", "fromUserId", [s("a1", "v"), s("k" * 17, "v"), s("a2", "v" * 1025), s("a3", "v")]),
    # StopOnError=1: stop at the first error, keep what was applied
    zm("room123", "fromUserId", [s("b1", "v", StopOnError=1), s("k" * 17, "v", StopOnError=1), s("b2", "v", StopOnError=1)]),
    zq("room123"),
    # another user may not change fromUserId's keys, nor delete them
    zm("room123", "user2", [s("attribute1", "mine"), dl("a1"), s("c1", "v")]),
    # the owner may; delete works
    zm("room123", "fromUserId", [s("attribute1", "value1b"), dl("a1")]),
    zq("room123"),
    # AutoDelete by a user who is not in the room: removed when it next exits
    zm("room123", "u9", [s("seat", "u9", AutoDelete=1)]),
    ctl(Z, "join", "room123", user="u9"),
    zq("room123"),
    ctl(Z, "leave", "room123", user="u9"),
    zq("room123"),
    # 20 keys per room: the 21st fails per key
    ctl(Z, "create_room", "count-room", creator="host"),
    zm("count-room", "host", [s("n%02d" % i, "v") for i in range(20)]),
    zm("count-room", "host", [s("n20", "v"), s("n00", "updated")]),
    # 5120 B per room
    ctl(Z, "create_room", "size-room", creator="host"),
    zm("size-room", "host", [s("s%d" % i, "x" * 1024) for i in range(5)]),
    zm("size-room", "host", [s("s5", "x")]),
    # request-level errors: 660000002
    zm("room123", "host", [s("m%d" % i, "v") for i in range(21)]),
    zm("room123", "host", []),
    zm("room123", "host", [{"Action": 2, "Key": "a"}]),
    zm("room123", "host", [{"Action": 0, "Key": 5, "Value": "v"}]),
    zm("room123", "host", [s("a", "v", AutoDelete=2)]),
    zm("room123", "host", [s("a", "v", StopOnError="1")]),
    zm("room*123", "host", [s("a", "v")]),
    zm("room123", "", [s("a", "v")]),
    {"vendor": Z, "method": "POST", "path": "/", "query": {"Action": "ModifyRoomAttribute"}, "body": {"RoomId": "room123", "Attributes": [s("a", "v")]}},
    zm("no-room", "host", [s("a", "v")]),
    zq("no-room"),
    # the path may carry the query; ZEGO's own action name QueryRoomAttribute works too
    {"vendor": Z, "method": "POST", "path": "/?Action=QueryRoomAttribute", "body": {"RoomId": "count-room", "FromUserId": "host"}},
    # unknown action, wrong method, malformed JSON
    {"vendor": Z, "method": "POST", "path": "/", "query": {"Action": "DeleteRoomAttribute"}, "body": {"RoomId": "room123"}},
    {"vendor": Z, "method": "GET", "path": "/?Action=QueryRoomAttributes", "body": {"RoomId": "room123"}},
    {"vendor": Z, "method": "POST", "path": "/"},
    '{"vendor":"zego","method":"POST","path":"/?Action=ModifyRoomAttribute","body":{"RoomId":',
    # rate limit: 20 requests/s
] + [zq("room123", now=60_000) for _ in range(20)] + [
    zq("room123"),
    zq("room123", now=60_050),  # 50 ms refill one token
]
dump(Z, z)
