// The sandbox's control-stream framing: what the client fleet and the headscale stand-in say to each
// other after `POST /ts2021` was upgraded. It replaces tailscale's Noise + HTTP/2 map long poll with
// newline-terminated ASCII lines that carry the same facts headscale acts on (research/headscale.md §2, §4):
//
//   client:  POST /ts2021 HTTP/1.1 / Host: <tenant>.demo.com / Upgrade: tailscale-control-protocol /
//            Connection: upgrade / X-Tailscale-Handshake: <base64 of the machine key>
//   server:  HTTP/1.1 101 Switching Protocols (headers: Upgrade, Connection)
//   client:  MAP <nodekey:…> <mkey:…> <endpoints JSON array, no spaces>\n     (the streaming map request)
//   server:  OK <cluster_id> <node_id>\n        node found for this cluster_id with that machine key,
//                                               not expired, not deleted: the long poll starts
//        or  ERR 404 node not found\n           headscale's answer for an unknown node key or a machine
//                                               key mismatch; the server closes. A device that keeps
//                                               getting this would need to log in again (a rejection).
//        or  ERR 500 <reason>\n                 server-side failure (e.g. database down); not a rejection
//   server:  KA <cluster_id> <unix_ms>\n        keep-alive every ~1 s (headscale: 50–59 s; faster here so
//                                               the fleet sees which cluster serves it quickly)
//
// Lines are at most kMaxLine bytes. Everything else (HTTP errors from the proxy, EOF, RST) is a plain
// connection failure for the client.
#pragma once

#include <cstddef>

namespace headshift::sandbox::wire {

inline constexpr const char* kUpgradeProtocol = "tailscale-control-protocol";
inline constexpr const char* kMap = "MAP";
inline constexpr const char* kOk = "OK";
inline constexpr const char* kErr = "ERR";
inline constexpr const char* kKeepAlive = "KA";
inline constexpr std::size_t kMaxLine = 4096;

}  // namespace headshift::sandbox::wire
