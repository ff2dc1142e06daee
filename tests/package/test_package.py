#!/usr/bin/python3
"""The Debian package as a user gets it: a Release build in its own directory (only the headshift target),
`cpack -G DEB`, the .deb unpacked with `dpkg-deb -x` into a clean directory, and what is inside checked:
the stripped binary answers --version with the version and this tree's git revision, `man -l` renders the
page, the bash completion offers every command and option the binary's --help lists, the annotated example
config is the repository's, and Depends: (dpkg-shlibdeps) names libpq5 and libcurl4.

Env (set by tests/package/CMakeLists.txt): HEADSHIFT_SOURCE_DIR, HEADSHIFT_VERSION, HEADSHIFT_PKG_BUILD_DIR.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

SRC = os.environ["HEADSHIFT_SOURCE_DIR"]
VERSION = os.environ["HEADSHIFT_VERSION"]
BUILD = os.environ["HEADSHIFT_PKG_BUILD_DIR"]
# The bash-completion library (package bash-completion); overridable to try another copy.
BASH_COMPLETION = os.environ.get("HEADSHIFT_BASH_COMPLETION_LIB", "/usr/share/bash-completion/bash_completion")


def run(argv, **kw):
    p = subprocess.run(argv, text=True, capture_output=True, **kw)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: exit {p.returncode}\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}")
    return p.stdout


def help_commands(text):
    """The subcommand names in a CLI11 --help text (the 'SUBCOMMANDS:' section)."""
    names, inside = [], False
    for line in text.splitlines():
        if re.match(r"^subcommands:", line, re.I):
            inside = True
            continue
        if inside:
            m = re.match(r"^  (\S+)", line)
            if m:
                names.append(m.group(1))
            elif line.strip() and not line.startswith("   "):
                inside = False
    return names


def help_options(text):
    """Every long/short option a CLI11 --help text lists (e.g. `-y,--yes` gives -y and --yes)."""
    opts = set()
    for line in text.splitlines():
        m = re.match(r"^\s+((?:-[\w-]+,?)+)", line)
        if m:
            opts.update(o for o in m.group(1).split(",") if o)
    return opts


class DebianPackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        run(["cmake", "-S", SRC, "-B", BUILD, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release", "-DHEADSHIFT_WERROR=ON"])
        run(["cmake", "--build", BUILD, "--target", "headshift"])
        out_dir = os.path.join(BUILD, "package")
        arch = run(["dpkg", "--print-architecture"]).strip()
        cls.deb = os.path.join(out_dir, f"headshift_{VERSION}_{arch}.deb")
        if os.path.exists(cls.deb):
            os.unlink(cls.deb)  # the checks below must see this run's package
        run(["cpack", "-G", "DEB"], cwd=BUILD)
        if not os.path.exists(cls.deb):
            raise AssertionError(f"cpack made no {cls.deb}: {os.listdir(out_dir)}")
        cls.root = tempfile.mkdtemp(prefix="headshift-deb-")
        run(["dpkg-deb", "-x", cls.deb, cls.root])
        cls.bin = os.path.join(cls.root, "usr", "bin", "headshift")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def test_contents_are_the_binary_and_its_documentation_only(self):
        listing = run(["dpkg-deb", "-c", self.deb])
        files = sorted(line.split()[-1].lstrip(".") for line in listing.splitlines() if not line.startswith("d"))
        self.assertEqual(files, ["/usr/bin/headshift",
                                 "/usr/share/bash-completion/completions/headshift",
                                 "/usr/share/doc/headshift/headshift.yaml",
                                 "/usr/share/man/man1/headshift.1.gz"])

    def test_version_names_release_and_git_revision(self):
        out = run([self.bin, "--version"]).strip()
        head = subprocess.run(["git", "-C", SRC, "rev-parse", "--short=12", "HEAD"], text=True,
                              capture_output=True)
        if head.returncode == 0:
            self.assertRegex(out, rf"^headshift {re.escape(VERSION)} \(git {head.stdout.strip()}(-dirty)?\)$")
        else:  # a source tree without .git
            self.assertEqual(out, f"headshift {VERSION} (git unknown)")

    def test_revision_is_unknown_without_git(self):
        with tempfile.TemporaryDirectory() as tree:
            out = os.path.join(tree, "build_info.cc")
            run(["cmake", f"-DSOURCE_DIR={tree}", f"-DOUTPUT={out}", f"-DVERSION={VERSION}", "-P",
                 os.path.join(SRC, "cmake", "Revision.cmake")])
            with open(out) as f:
                self.assertIn('BuildRevision() { return "unknown"; }', f.read())

    def test_binary_is_stripped(self):
        self.assertRegex(run(["file", "-b", self.bin]), r"ELF 64-bit.*, stripped")
        self.assertNotIn(".symtab", run(["readelf", "-S", "-W", self.bin]))
        self.assertNotIn(".debug_info", run(["readelf", "-S", "-W", self.bin]))

    def test_depends_computed_by_shlibdeps(self):
        depends = run(["dpkg-deb", "-f", self.deb, "Depends"])
        names = {d.strip().split()[0] for d in depends.split(",") if d.strip()}
        # Loaded with dlopen (common/shared_library.h), so named by packaging/CMakeLists.txt ...
        self.assertIn("libpq5", names, depends)
        self.assertIn("libcurl4", names, depends)
        # ... and linked: found by dpkg-shlibdeps in the binary.
        for linked in ("libc6", "libstdc++6", "libmnl0", "libnetfilter-conntrack3"):
            self.assertIn(linked, names, depends)
        for field in ("Package", "Version", "Architecture"):
            self.assertTrue(run(["dpkg-deb", "-f", self.deb, field]).strip())
        self.assertEqual(run(["dpkg-deb", "-f", self.deb, "Version"]).strip(), VERSION)

    def test_man_page_renders(self):
        page = self.path("usr", "share", "man", "man1", "headshift.1.gz")
        env = dict(os.environ, MANWIDTH="100")
        env.pop("MAN_KEEP_FORMATTING", None)
        text = re.sub(r".\x08", "", run(["man", "--warnings", "-l", page], env=env))  # no overstrike, if any
        self.assertRegex(text, r"HEADSHIFT\(1\)")
        for heading in ("NAME", "SYNOPSIS", "COMMANDS", "EXIT STATUS", "FILES"):
            self.assertRegex(text, rf"(?m)^{heading}$")
        # Every command the binary has is on the page.
        for cmd in help_commands(run([self.bin, "--help"])):
            self.assertRegex(text, rf"\b{re.escape(cmd)}\b", f"man page lacks command {cmd}")

    def test_example_config_is_the_repositorys(self):
        with open(self.path("usr", "share", "doc", "headshift", "headshift.yaml")) as f, \
                open(os.path.join(SRC, "playbooks", "examples", "headshift.yaml")) as g:
            self.assertEqual(f.read(), g.read())

    def test_ansible_role_installs_the_package_with_apt(self):
        """headshift_install with headshift_deb, run by real Ansible whose apt really installs the package, inside
        a private mount namespace where /usr, /var and /etc are overlays over this machine's: the writes (binary,
        dpkg database) land in a temp dir and vanish with it; this machine's packages stay as they are."""
        if os.geteuid() != 0:
            self.fail("needs root (a mount namespace with overlays)")
        roles = os.path.join(SRC, "playbooks", "ansible", "roles")
        with tempfile.TemporaryDirectory(prefix="headshift-apt-") as t:
            with open(os.path.join(t, "install.yml"), "w") as f:
                f.write("- name: Install headshift\n  hosts: all\n  gather_facts: false\n"
                        "  roles:\n    - role: headshift_install\n")
            play = (f"ansible-playbook -i localhost, -c local -e ansible_python_interpreter=/usr/bin/python3 "
                    f"-e headshift_deb={self.deb} -e headshift_deb_dir={t}/debs -e headshift_state_dir={t}/state "
                    f"{t}/install.yml")
            script = "\n".join([
                "set -e",
                "for d in usr var etc; do",
                f"  mkdir -p {t}/$d.up {t}/$d.work",
                f"  mount -t overlay overlay -o lowerdir=/$d,upperdir={t}/$d.up,workdir={t}/$d.work /$d",
                "done",
                f"{play}", "echo '=== again'", f"{play}", "echo '=== installed'",
                "dpkg-query -W -f='${Status} ${Version}\\n' headshift",
                "/usr/bin/headshift --version",
                "dpkg -L headshift"])
            env = dict(os.environ, ANSIBLE_ROLES_PATH=roles, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                       ANSIBLE_RETRY_FILES_ENABLED="0")
            out = run(["unshare", "--mount", "--propagation", "private", "bash", "-c", script], env=env)
        first, again = out.split("=== again")
        again, installed = again.split("=== installed")
        self.assertRegex(first, r"localhost\s*: ok=\d+\s+changed=[1-9]")
        self.assertRegex(again, r"localhost\s*: ok=\d+\s+changed=0\s")  # apt sees the same version installed
        self.assertIn(f"install ok installed {VERSION}", installed)
        self.assertRegex(installed, rf"headshift {re.escape(VERSION)} \(git ")
        self.assertIn("/usr/share/bash-completion/completions/headshift", installed)
        self.assertFalse(os.path.exists("/var/lib/dpkg/info/headshift.list"), "the install leaked out of the namespace")

    def complete(self, words):
        """What the installed completion offers for `words` (the last one being completed), run by bash with
        the real bash-completion library."""
        script = "\n".join([
            f"source {BASH_COMPLETION}",
            f"source {self.path('usr', 'share', 'bash-completion', 'completions', 'headshift')}",
            "COMP_WORDS=(" + " ".join(f"'{w}'" for w in words) + ")",
            f"COMP_CWORD={len(words) - 1}",
            "COMP_LINE=\"${COMP_WORDS[*]}\"", "COMP_POINT=${#COMP_LINE}",
            "_headshift", "printf '%s\\n' \"${COMPREPLY[@]}\""])
        return set(run(["bash", "-c", script]).split())

    def test_bash_completion_knows_every_command_and_option(self):
        if not os.path.exists(BASH_COMPLETION):
            self.fail(f"{BASH_COMPLETION} missing: install the bash-completion package (scripts/setup does)")
        top = run([self.bin, "--help"])
        commands = help_commands(top)
        self.assertGreater(len(commands), 10, top)
        self.assertLessEqual(set(commands), self.complete(["headshift", ""]))
        self.assertLessEqual(help_options(top) - {"-h"}, self.complete(["headshift", "-"]))
        paths = []
        for cmd in commands:
            text = run([self.bin, cmd, "--help"])
            subs = help_commands(text)
            if subs:
                self.assertLessEqual(set(subs), self.complete(["headshift", cmd, ""]), cmd)
                paths += [[cmd, s] for s in subs]
            else:
                paths.append([cmd])
        for p in paths:
            want = help_options(run([self.bin] + p + ["--help"])) - {"-h"}
            got = self.complete(["headshift"] + p + ["-"])
            self.assertLessEqual(want, got, f"completion of `headshift {' '.join(p)} -` lacks {want - got}")
        # Step names for --until come from the binary's own list.
        m = re.search(r"--until\s+TEXT:\{([^}]*)\}", run([self.bin, "migrate", "--help"]))
        self.assertIsNotNone(m)
        steps = set(re.split(r"[,\s]+", m.group(1).strip()))
        self.assertEqual(steps, self.complete(["headshift", "migrate", "hsa", "--until", ""]))


if __name__ == "__main__":
    unittest.main()
