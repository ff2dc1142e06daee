// LabNaming: the name of every resource a sandbox lab makes, each carrying the lab's prefix, so that
// one lab's resources are found (and removed) from the host alone and never touch another lab's:
//   network namespaces   sandbox-<name>-<role>          (clients, edge, lb, c<cluster id>)
//   root-netns veths     sb<6 hex of FNV-1a(name)><role> (IFNAMSIZ allows 15 chars; the alias holds
//                                                        the namespace prefix, see LabLinkAlias)
//   state dir            /tmp/headshift-sandbox-<name>  (default; lab.json records a custom one)
// Veths and nftables tables inside a lab's namespaces need no prefix: they go with their namespace.
//
// Pure functions; thread-safe.
#pragma once

#include <string>

namespace headshift::sandbox::lab {

constexpr int kStandinPort = 8080;
constexpr int kMaxClients = 9000;  // HAProxy maxconn: 2 fds per client must fit 20,000 fds

// "sandbox-<lab>-<role>".
std::string NsName(const std::string& lab, const std::string& role);
// "sandbox-<lab>-": the prefix of all of the lab's namespaces.
std::string NsPrefix(const std::string& lab);
// "sb" + 6 hex of the lab name (FNV-1a, stable across builds): the prefix of its root-netns veths.
std::string LinkPrefix(const std::string& lab);
// The ifalias set on each root-netns veth of the lab (NsPrefix(lab)), so a veth whose 6-hex prefix
// collides with another lab's name is told apart.
std::string LabLinkAlias(const std::string& lab);
// HAProxy backend of a cluster: "headscale-cluster<id>".
std::string Backend(const std::string& cluster);
// "<subnet><host>" for a subnet "10.x.y.".
std::string Addr(const std::string& subnet, int host);
// True if `s` is 1..max chars of [a-z0-9-] (lab, cluster and tenant names).
bool ValidName(const std::string& s, size_t max);

}  // namespace headshift::sandbox::lab
