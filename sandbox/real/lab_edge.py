"""The real-peer lab's edge: a lab CA and *.demo.com certificate, and the proxy in front of the headscale nodes,
Traefik (file provider + API) or HAProxy (tenants map + admin socket). A mixin of reallab.Lab."""
import os

import yaml

from labkit import http_get, run, sys_bin, wait_for
from lab_nodes import peer_bin


class EdgeMixin:
    def _tls(self, tenants):
        """A lab CA and a *.demo.com certificate: the edge serves :443 too. A tailscale client whose previous
        control dial was less than 2 minutes ago dials :443 (TLS) first after a reset
        (tailscale.com control/controlhttp/client.go forceNoise443, health.LastNoiseDialWasRecent), so an
        edge without :443 strands freshly connected devices. The devices trust the CA via SSL_CERT_FILE."""
        d = self.path("tls")
        os.makedirs(d, exist_ok=True)
        ossl = sys_bin("openssl")
        run([ossl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             f"{d}/ca.key", "-out", f"{d}/ca.pem", "-days", "3", "-subj", "/CN=headshift real-peer lab CA"])
        run([ossl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             f"{d}/edge.key", "-out", f"{d}/edge.csr", "-subj", "/CN=demo.com"])
        with open(f"{d}/ext.cnf", "w") as f:
            f.write("subjectAltName=DNS:*.demo.com,DNS:demo.com\nextendedKeyUsage=serverAuth\n")
        run([ossl, "x509", "-req", "-in", f"{d}/edge.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
             "-CAcreateserial", "-out", f"{d}/edge.pem", "-days", "3", "-extfile", f"{d}/ext.cnf"])
        with open(f"{d}/edge.bundle.pem", "w") as out:
            for part in ("edge.pem", "edge.key"):
                with open(f"{d}/{part}") as f:
                    out.write(f.read())
        self.info["tls"] = {"ca": f"{d}/ca.pem", "cert": f"{d}/edge.pem", "key": f"{d}/edge.key",
                            "bundle": f"{d}/edge.bundle.pem"}
        self.save()


    def _edge(self, tenants, clusters):
        dc = self.ns("dc")
        if self.info["edge"] == "traefik":
            static = {
                # websecure terminates TLS for every router attached to it (http.tls), so one router per
                # tenant on [web, websecure] serves both ports.
                "entryPoints": {"web": {"address": f"{self.edge_ip()}:80"},
                                "websecure": {"address": f"{self.edge_ip()}:443", "http": {"tls": {}}},
                                "traefik": {"address": f"{self.edge_ip()}:8081"}},
                "api": {"insecure": True, "dashboard": False},
                "providers": {"file": {"directory": self.path("traefik", "dynamic"), "watch": True},
                              "providersThrottleDuration": "200ms"},
                "log": {"level": "INFO"},
                "ping": {"entryPoint": "traefik"},
            }
            with open(self.path("traefik", "traefik.yml"), "w") as f:
                yaml.safe_dump(static, f, sort_keys=False)
            # The operator's own dynamic file (headshift owns only headshift-*.yml): the edge certificate.
            tls = {"tls": {"stores": {"default": {"defaultCertificate": {
                "certFile": self.info["tls"]["cert"], "keyFile": self.info["tls"]["key"]}}}}}
            with open(self.path("traefik", "dynamic", "lab-tls.yml"), "w") as f:
                yaml.safe_dump(tls, f, sort_keys=False)
            self.spawn("traefik", [peer_bin("traefik"), f"--configFile={self.path('traefik', 'traefik.yml')}"],
                       netns=dc, log_name="traefik")
            wait_for("Traefik API", lambda: http_get(f"http://{self.edge_ip()}:8081/api/version")[0] == 200, 30)
        else:
            sock = self.path("haproxy.sock")
            mapf = self.path("tenants.map")
            with open(mapf, "w") as f:
                for t in tenants:
                    f.write(f"{t}.demo.com headscale-cluster{self.info['homes'][t]}\n")
            lines = ["global", f"  stats socket {sock} level admin", "  maxconn 8000", "defaults", "  mode http",
                     "  timeout connect 5s", "  timeout client 10m", "  timeout server 10m", "  timeout tunnel 1h",
                     "frontend web", f"  bind {self.edge_ip()}:80",
                     f"  bind {self.edge_ip()}:443 ssl crt {self.info['tls']['bundle']}",
                     f"  use_backend %[req.hdr(host),lower,word(1,:),map({mapf})]"]
            for i, c in enumerate(clusters):
                lines += [f"backend headscale-cluster{c}", f"  server n{c} {self.node_ip(i)}:8080 check inter 1s"]
            with open(self.path("haproxy.cfg"), "w") as f:
                f.write("\n".join(lines) + "\n")
            self.spawn("haproxy", [sys_bin("haproxy"), "-W", "-db", "-f", self.path("haproxy.cfg")], netns=dc,
                       log_name="haproxy")
            wait_for("HAProxy runtime socket", lambda: os.path.exists(sock), 15)
            self.info["haproxy"] = {"socket": sock, "map": mapf, "cfg": self.path("haproxy.cfg")}

