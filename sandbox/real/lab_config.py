"""The headshift side of the real-peer lab: <state>/headshift.yaml for `headshift --config` (split layout, the
lab's nodes, its edge, reload_command = reallab.py restart-node) and each tenant's first route. A mixin of
reallab.Lab."""
import os
import sys

import yaml

from labkit import LabError, run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REALLAB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reallab.py")


class ConfigMixin:
    def _route_tenants(self, tenants):
        if self.info["edge"] != "traefik":
            return
        for t in tenants:
            home = self.info["tenants"][t]["home"]
            p = run([self.headshift_bin(), "--config", self.headshift_config_for_routes(), "route", "set", t, home,
                     "--create"], check=False)
            if p.returncode != 0:
                raise LabError(f"headshift route set {t} {home} --create failed: {p.stderr.strip()[-500:]}")

    def headshift_config_for_routes(self):
        """The lab's config; while this headshift build lacks a key the lab writes (`database.cluster_column`,
        `clusters[].debug_url|policy_file|policy_reload_command`), a copy without them (routes need only the
        proxy section)."""
        p = run([self.headshift_bin(), "--config", self.path("headshift.yaml"), "route", "show"], check=False)
        if "unknown key" not in (p.stderr + p.stdout):
            return self.path("headshift.yaml")
        with open(self.path("headshift.yaml")) as f:
            cfg = yaml.safe_load(f)
        cfg["database"].pop("cluster_column", None)
        for c in cfg["clusters"]:
            for k in ("debug_url", "policy_file", "policy_reload_command"):
                c.pop(k, None)
        with open(self.path("headshift-routes.yaml"), "w") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
        return self.path("headshift-routes.yaml")

    def headshift_bin(self):
        b = os.environ.get("HEADSHIFT_BIN", os.path.join(REPO, "build", "cli", "headshift"))
        if not os.access(b, os.X_OK):
            raise LabError(f"headshift not built at {b} (cmake --build build, or set HEADSHIFT_BIN)")
        return b


    def _write_headshift_config(self, tenants, clusters):
        me = [sys.executable, REALLAB]
        cfg = {
            "database": {"layout": "split", "cluster_column": "none"},  # stock headscale: the cluster is the DSN
            "clusters": [],
            "sessions": {"hosts": [{"name": "edge", "netns": self.ns("dc"), "ports": [80, 443]}]},
            "tenants": {t: {"extra_cidrs": [f"{self.info['tenants'][t]['address']}/32"]} for t in tenants},
            "timeouts": {"db_connect_ms": 3000, "http_ms": 3000, "target_ready_ms": 30000, "route_live_ms": 10000,
                         "reconnect_ms": 60000, "reload_command_ms": 60000},
        }
        for i, c in enumerate(clusters):
            n = self.info["nodes"][c]
            cfg["clusters"].append({
                "id": c, "control_url": n["control_url"], "api_key_file": n["api_key_file"],
                "backend": f"headscale-cluster{c}", "dsn_file": self.path("secrets", f"dsn_{c}"),
                "cached_nodes": True, "debug_url": self.debug_url(c),
                "reload_command": me + ["--name", self.name, "--state-dir", self.dir, "restart-node", c]})
            if self.policy_mode() == "file":  # lab_policy.py: headscale re-reads its policy file on SIGHUP
                cfg["clusters"][-1].update({
                    "policy_file": self.policy_file(c),
                    "policy_reload_command": me + ["--name", self.name, "--state-dir", self.dir, "reload-policy", c]})
        if self.info["edge"] == "traefik":
            cfg["proxy"] = {"kind": "traefik-file", "traefik": {
                "directory": self.path("traefik", "dynamic"), "api_url": f"http://{self.edge_ip()}:8081",
                "router_template": "{tenant}", "host_template": "{tenant}.demo.com",
                "entry_points": ["web", "websecure"],
                "schema_version": 3, "throttle_ms": 200}}
        else:
            h = self.info["haproxy"]
            cfg["proxy"] = {"kind": "haproxy", "haproxy": {"runtime_socket": h["socket"], "map_file": h["map"],
                                                           "host_template": "{tenant}.demo.com"}}
        text = "# headshift config for real-peer lab " + self.name + " (written by sandbox/real/reallab.py)\n"
        text += yaml.safe_dump(cfg, sort_keys=False)
        with open(self.path("headshift.yaml"), "w") as f:
            f.write(text)
        self.info["config"] = self.path("headshift.yaml")
        self.save()

    # ---- down --------------------------------------------------------------------------------------
