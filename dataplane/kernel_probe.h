// ProbeSockDestroy: proves that this kernel and this process can reset a TCP connection with
// sock_diag SOCK_DESTROY. It runs on a dedicated thread inside a throwaway network namespace
// (unshare(CLONE_NEWNET)), opens a loopback connection it owns, finds the accepted socket with a
// dump, destroys it by its exact id and cookie, and checks the client sees the reset.
// Nothing outside that namespace is touched.
#pragma once

#include "common/status.h"

namespace headshift {

// OK, or NoPrivilege (missing CAP_NET_ADMIN / CAP_SYS_ADMIN, or a kernel without
// CONFIG_INET_DIAG_DESTROY), each with a fix hint.
Status ProbeSockDestroy();

}  // namespace headshift
