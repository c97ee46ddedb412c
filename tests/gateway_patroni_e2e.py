"""Drives Patroni's own etcd3 DCS (patroni.dcs.etcd3, unchanged) against one etcd endpoint, doing what a
Patroni primary does without PostgreSQL: initialise the cluster, register a member, take the leader key
with a lease, keep it, read the cluster back through the watch-fed cache, and see another client's change
arrive through the watch. Prints one JSON object with what it saw; exits non-zero on any failure.

Usage: python3 gateway_patroni_e2e.py HOST:PORT [USER PASSWORD]
"""
import json
import sys
import time

from patroni.dcs import get_dcs


def main():
    host = sys.argv[1]
    etcd3 = {"hosts": [host]}
    if len(sys.argv) > 3:
        etcd3.update({"username": sys.argv[2], "password": sys.argv[3]})
    config = {
        "scope": "batman",
        "namespace": "/service/",
        "name": "postgresql0",
        "ttl": 30,
        "loop_wait": 10,
        "retry_timeout": 10,
        "etcd3": etcd3,
    }
    dcs = get_dcs(config)
    seen = {"class": type(dcs).__name__}

    cluster = dcs.get_cluster()
    seen["empty_leader"] = cluster.leader is None
    seen["initialize"] = bool(dcs.initialize(create_new=True, sysid="7000000000000000001"))
    seen["initialize_again"] = bool(dcs.initialize(create_new=True, sysid="7000000000000000002"))
    seen["touch_member"] = bool(dcs.touch_member({"conn_url": "postgres://127.0.0.1:5432/postgres",
                                                  "api_url": "http://127.0.0.1:8008/patroni",
                                                  "state": "running", "role": "master"}))
    seen["acquire_leader"] = bool(dcs.attempt_to_acquire_leader())
    seen["update_leader"] = bool(dcs.update_leader(last_lsn=100))
    dcs.set_config_value(json.dumps({"ttl": 30, "loop_wait": 10}))

    cluster = dcs.get_cluster()
    seen["leader"] = cluster.leader and cluster.leader.name
    seen["members"] = sorted(m.name for m in cluster.members)
    seen["initialize_key"] = cluster.initialize
    seen["config_ttl"] = cluster.config and cluster.config.data.get("ttl")
    seen["leader_has_lease"] = bool(cluster.leader and cluster.leader.session)

    # another client (etcdctl-like, through the DCS client) writes; the watch-fed cache must see it
    other = get_dcs(dict(config, name="postgresql1", etcd3=dict(etcd3)))
    other.touch_member({"conn_url": "postgres://127.0.0.1:5433/postgres", "api_url": "http://127.0.0.1:8009/patroni",
                        "state": "running", "role": "replica"})
    deadline = time.time() + 10
    members = []
    while time.time() < deadline:
        members = sorted(m.name for m in dcs.get_cluster().members)
        if "postgresql1" in members:
            break
        time.sleep(0.1)
    seen["members_after_other"] = members
    seen["other_cannot_take_leader"] = not other.attempt_to_acquire_leader()

    seen["delete_leader"] = bool(dcs.delete_leader())
    seen["leader_after_delete"] = dcs.get_cluster().leader is None
    print(json.dumps(seen, sort_keys=True))


if __name__ == "__main__":
    main()
