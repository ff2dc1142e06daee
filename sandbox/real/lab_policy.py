"""The real-peer lab's ACL policies: tenants kept apart by each node's policy, as a multi-tenant headscale is
run, and each tenant's tagged servers. A mixin of reallab.Lab.

Kinds (`up --policy`):
  per-user        (default) each node carries, for every tenant homed there, {"action":"accept",
                  "src":["<t>@"],"dst":["<t>@:*"]}: a node's policy names only the users it has.
  autogroup-self  both nodes carry {"action":"accept","src":["autogroup:member"],"dst":["autogroup:self:*"]}.
  probes          (swarm labs) every node carries the same policy: each tenant's tailscaled (by address, `hosts`)
                  may reach each other, swarm devices see no peer (lab_swarm.py says why: per-user netmaps of
                  hundreds of peers kept headscale from bringing a 2,000-device lab up). Until the tailscaled
                  have addresses, a policy matching no node.
  none            no policy (every device may reach every other).
A tenant with a tagged server (`up --tagged N`: the first N tenants) also gets, on its home node,
tagOwners {"tag:<t>-srv": ["<t>@"]} and rules from <t>@ to tag:<t>-srv and back.

Modes (`up --policy-mode`):
  file      (default) headscale's policy.path is <state>/hs<c>/policy.json (empty: no policy); the lab writes it
            and sends that headscale SIGHUP (`reallab.py reload-policy C`, headshift's policy_reload_command).
  database  policy.mode database; the lab stores it with `headscale policy set -f`.
Every node's metrics/debug listener is on its lab address (<node ip>:9090, headshift's debug_url).
"""
import json
import os
import signal
import tempfile

from labkit import LabError, http_get, wait_for
from lab_nodes import peer_bin
from lab_swarm import ISOLATED, probes_policy

POLICY_KINDS = ("per-user", "autogroup-self", "probes", "none")
POLICY_MODES = ("file", "database")
DEBUG_PORT = 9090


class PolicyMixin:
    # ---- configuration -----------------------------------------------------------------------------
    def policy_kind(self):
        return self.info.get("acl_policy", {}).get("kind", "none")

    def policy_mode(self):
        return self.info.get("acl_policy", {}).get("mode", "file")

    def policy_file(self, c):
        return self.path(f"hs{c}", "policy.json")

    def debug_url(self, c):
        return f"http://{self.info['nodes'][c]['ip']}:{DEBUG_PORT}"

    def headscale_policy_config(self, c):
        """headscale's `policy` section for node c. File mode starts from an empty file (no policy): the
        rules name users, written once they exist (apply_lab_policies)."""
        if self.policy_mode() == "database":
            return {"mode": "database"}
        path = self.policy_file(c)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            open(path, "w").close()
        return {"mode": "file", "path": path}

    def tagged_tenants(self):
        return [t for t, ti in self.info["tenants"].items() if ti.get("tagged")]

    # ---- the policies ------------------------------------------------------------------------------
    def lab_policy(self, c):
        """The policy the lab gives node c (a dict), or None for no policy."""
        kind = self.policy_kind()
        if kind == "none":
            return None
        if kind == "probes":
            probes = self.info.get("acl_policy", {}).get("probes")
            return probes_policy(probes) if probes else ISOLATED
        homed = [t for t, ti in self.info["tenants"].items() if ti["home"] == c]
        acls, tag_owners = [], {}
        if kind == "autogroup-self":
            acls.append({"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]})
        for t in homed:
            if kind == "per-user":
                acls.append({"action": "accept", "src": [f"{t}@"], "dst": [f"{t}@:*"]})
            for tag in self.info["tenants"][t].get("tags", []):
                tag_owners[tag] = [f"{t}@"]
                acls.append({"action": "accept", "src": [f"{t}@"], "dst": [f"{tag}:*"]})
                acls.append({"action": "accept", "src": [tag], "dst": [f"{t}@:*"]})
        pol = {}
        if tag_owners:
            pol["tagOwners"] = tag_owners
        pol["acls"] = acls
        return pol

    def set_policy_text(self, c, text):
        """Makes `text` node c's policy the way its mode says (file + SIGHUP, or `headscale policy set`)."""
        if self.policy_mode() == "database":
            with tempfile.NamedTemporaryFile("w", suffix=".json", dir=self.path(f"hs{c}"), delete=False) as f:
                f.write(text)
            try:
                self.headscale(c, ["policy", "set", "-f", f.name])
            finally:
                os.unlink(f.name)
        else:
            tmp = self.policy_file(c) + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            before = self.node_filter(c)
            os.replace(tmp, self.policy_file(c))
            self.reload_policy(c)
            # SIGHUP is handled asynchronously and GET /api/v1/policy answers the file itself: wait (briefly,
            # the new policy may compile to the same filter) until the compiled filter changes.
            try:
                wait_for(f"node {c} reloading its policy", lambda: self.node_filter(c) != before, 3)
            except LabError:
                pass
        wait_for(f"node {c} serving its policy", lambda: self.node_policy(c) == text, 15)

    def apply_lab_policies(self):
        for c in self.info["nodes"]:
            pol = self.lab_policy(c)
            if pol is not None:
                self.set_policy_text(c, json.dumps(pol, indent=2) + "\n")

    def apply_probes_policy(self):
        """`probes`: once the tailscaled are Running, every node's policy names them by tailnet address."""
        if self.policy_kind() != "probes":
            return
        probes = {}
        for t, ti in self.info["tenants"].items():
            probes[t] = {}
            for d in ti["devices"]:
                v4 = [ip for ip in self.device_status(d).get("ips", []) if "." in ip]
                if not v4:
                    raise LabError(f"device {d} has no tailnet IPv4 address for the probes policy")
                probes[t][d] = v4[0]
        self.info["acl_policy"]["probes"] = probes
        self.save()
        self.apply_lab_policies()
        self.wait_online(timeout=120)

    def reload_policy(self, c):
        """SIGHUP to node c's headscale: it re-reads its policy file (hscontrol/app.go, v0.29)."""
        self.load()
        pid = self.pid(f"headscale-{c}")
        if not pid:
            raise LabError(f"headscale node {c} is not running")
        os.kill(pid, signal.SIGHUP)

    # ---- what the nodes say ------------------------------------------------------------------------
    def node_policy(self, c):
        """The policy text node c serves (GET /api/v1/policy); '' when it has none."""
        try:
            return self.node_api(c, "/api/v1/policy").get("policy", "")
        except Exception as e:  # database mode without a policy answers an error
            if "not found" in str(e) or "500" in str(e):
                return ""
            raise

    def node_filter(self, c):
        """Node c's compiled global packet filter (/debug/filter on its debug listener)."""
        code, body = http_get(self.debug_url(c) + "/debug/filter", timeout=5)
        return json.loads(body)

    # ---- tagged servers ----------------------------------------------------------------------------
    def _tagged_server(self, t):
        """A pre-auth key tagged tag:<t>-srv (created by the tenant's user; the node is stored user-less) and
        one more device <t>-srv registered with it."""
        ti = self.info["tenants"][t]
        tag = f"tag:{t}-srv"
        out = self.headscale(ti["home"], ["preauthkeys", "create", "-u", str(ti["user_id"]), "--tags", tag,
                                          "--reusable", "-e", "24h", "-o", "json"])
        dev = f"{t}-srv"
        ti.setdefault("authkeys", {})[dev] = self._secret(f"authkey_{dev}", json.loads(out)["key"])
        ti["devices"].append(dev)
        ti["tagged_devices"] = [dev]
        self.save()

    def tenant_node_rows(self, c, t):
        """Rows of tenant t on node c: its users' nodes and the user-less nodes carrying its tags."""
        tags = self.info["tenants"][t].get("tags", [])
        cond = " OR ".join(f"n.tags LIKE '%\"{tag}\"%'" for tag in tags) or "false"
        return int(self.psql(f"hs{c}", "SELECT count(*) FROM nodes n LEFT JOIN users u ON u.id = n.user_id "
                                       f"WHERE n.deleted_at IS NULL AND (u.name = '{t}' OR {cond})"))

    def device_peers(self, dev):
        """Host names of the peers device `dev` has in its netmap (`tailscale status --json`)."""
        t = dev.rsplit("-", 1)[0]
        sock = self.path("devices", dev, "tailscaled.sock")
        p = self.run_in_tenant(t, [peer_bin("tailscale"), f"--socket={sock}", "status", "--json"])
        if p.returncode != 0:
            raise LabError(f"tailscale status on {dev}: {p.stderr.strip()[-300:]}")
        return sorted(v.get("HostName", "") for v in (json.loads(p.stdout).get("Peer") or {}).values())


def check_policy_args(kind, mode):
    if kind not in POLICY_KINDS:
        raise LabError(f"--policy {kind}: use one of {', '.join(POLICY_KINDS)}")
    if mode not in POLICY_MODES:
        raise LabError(f"--policy-mode {mode}: use file or database")


