// LabInventory: what of one lab (by name or state dir) is on this host right now, found from the
// host alone: its namespaces and root veths by their prefix (sandbox/lab_naming.h), its processes by
// the namespace they run in or by the lab path on their command line, its PostgreSQL by its pid
// file. Teardown uses it to remove a lab whose lab.json is lost, and `up` to sweep a dead lab's
// leftovers before making its own.
//
// Read-only; thread-safe.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace headshift::sandbox::lab {

// Names under /run/netns that start with NsPrefix(lab).
std::vector<std::string> LabNetnsOnHost(const std::string& lab);
// Root-netns interfaces that start with LinkPrefix(lab) and whose alias, if set, is this lab's
// (LabLinkAlias): a veth of another lab whose name hashes to the same prefix is left alone.
std::vector<std::string> LabLinksOnHost(const std::string& lab);
// Pids whose network namespace is one of `netns` (names under /run/netns).
std::vector<pid_t> PidsInNetns(const std::vector<std::string>& netns);
// The postmaster of a lab data dir, from its pid file, verified by its working directory; -1 if none.
pid_t LabPostmaster(const std::string& data_dir);
// Pids (other than this one) whose command line mentions `needle` (a path unique to one lab, e.g.
// "<state>/pg/"), so an initdb or postgres of a lab whose `up` was killed is found without its pid.
std::vector<pid_t> PidsWithArg(const std::string& needle);
// The entries a lab writes in its state dir (LabDown removes exactly these from a dir it did not create).
const std::vector<std::string>& LabDirEntries();
// True if every entry of `dir` is something a lab writes (so a lab dir that lost its lab.json can
// still be removed, and nothing else ever is).
bool LooksLikeLabDir(const std::string& dir);

}  // namespace headshift::sandbox::lab
