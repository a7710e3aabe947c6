#!/usr/bin/env python3
"""The layering rules of README.md ("Layers"), checked on the tree.

  - devices/ and vnet/ are plain models: they include nothing of vmm/ or mgmt/;
    lib/ includes only lib/; include/abi/ (what guests and tools share with
    the hypervisor) includes nothing else of the tree;
  - nothing outside a backend folder (vmm/vmx/, a later vmm/svm/) includes
    it: only the backend knows VMCS fields and VMX capabilities;
  - the quoted includes among headers form no circle;
  - every header compiles on its own;
  - README.md's layout table matches the tree: every folder with C or
    assembly sources has its row, and every file a row names exists there.

usage: tools/check-layers.py [--virt vmx] [--cc gcc] [--efi-inc /usr/include/efi]
Prints one line per violation and "check-layers: N headers, N violations";
exits non-zero on a violation.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SOURCE_DIRS = ("boot", "vmm", "devices", "vnet", "mgmt", "lib", "include", "tests", "tools")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

# Prefix of the including file -> include prefixes it must not use.
FORBIDDEN = (
    ("devices/", ("vmm/", "mgmt/")),
    ("vnet/", ("vmm/", "mgmt/", "devices/")),
    ("lib/", ("vmm/", "mgmt/", "devices/", "vnet/", "boot/")),
)


def tree_files():
    for top in SOURCE_DIRS:
        for dirpath, _, names in os.walk(os.path.join(ROOT, top)):
            for name in sorted(names):
                if name.endswith((".c", ".h", ".S")):
                    yield os.path.relpath(os.path.join(dirpath, name), ROOT)


def resolve(include, including):
    """The tree path an include names (-I. -Iinclude, or beside the file), or None."""
    for candidate in (include, os.path.join("include", include),
                      os.path.join(os.path.dirname(including), include)):
        if os.path.isfile(os.path.join(ROOT, candidate)):
            return os.path.normpath(candidate)
    return None


def includes_of(path):
    with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as f:
        return [resolve(i, path) or i for i in INCLUDE_RE.findall(f.read())]


# The vendor backends of vmm/virt.h; other folders of vmm/ (vmm/storage/) are generic.
VENDOR_BACKENDS = ("vmx", "svm")


def backend_dirs():
    return [f"vmm/{d}/" for d in VENDOR_BACKENDS if os.path.isdir(os.path.join(ROOT, "vmm", d))]


def layer_violations(files, graph):
    backends = backend_dirs()
    for path in files:
        rules = [bad for prefix, bad in FORBIDDEN if path.startswith(prefix)]
        # Unit tests and fuzzers exercise the backend's plain-C parts directly.
        outside_backend = not any(path.startswith(b)
                                  for b in backends + ["tests/unit/", "tests/fuzz/"])
        for inc in graph[path]:
            if any(inc.startswith(p) and os.path.isfile(os.path.join(ROOT, inc))
                   for bad in rules for p in bad):
                yield f"{path}: includes {inc} (layer rule)"
            if (path.startswith("include/abi/") and not inc.startswith("include/abi/")
                    and os.path.isfile(os.path.join(ROOT, inc))):
                yield f"{path}: the shared ABI includes {inc}"
            if outside_backend and any(inc.startswith(b) for b in backends):
                yield f"{path}: generic code includes the backend's {inc}"


def header_cycles(headers, graph):
    """Each circle once, as the list of headers along it."""
    state, stack, found = {}, [], []

    def visit(h):
        state[h] = "open"
        stack.append(h)
        for inc in graph.get(h, ()):
            if inc not in headers:
                continue
            if state.get(inc) == "open":
                found.append(stack[stack.index(inc):] + [inc])
            elif inc not in state:
                visit(inc)
        stack.pop()
        state[h] = "done"

    for h in sorted(headers):
        if h not in state:
            visit(h)
    return found


def compile_alone(header, args):
    """None when the header compiles as the only include of a file, else gcc's first lines."""
    host = header.startswith("mgmt/vmmctl/")
    flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-I.", "-Iinclude"]
    if host:
        flags.append("-D_DEFAULT_SOURCE")
    else:
        flags += ["-ffreestanding", "-mgeneral-regs-only", "-fshort-wchar", "-DGNU_EFI_USE_MS_ABI",
                  "-isystem", args.efi_inc, "-isystem", os.path.join(args.efi_inc, "x86_64")]
    with tempfile.NamedTemporaryFile("w", suffix=".c", dir=None, delete=False) as f:
        f.write(f'#include "{header}"\n')
        unit = f.name
    try:
        r = subprocess.run([args.cc, *flags, unit], cwd=ROOT, capture_output=True, text=True)
    finally:
        os.unlink(unit)
    return None if r.returncode == 0 else "\n    ".join(r.stderr.strip().splitlines()[:3])


def layout_table():
    """README.md's layout rows: {folder: the row's text}."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("\n## Layout", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([^`]+/)` \| (.*) \|$", section, re.M))


def layout_violations(files):
    rows = layout_table()
    source_dirs = {os.path.dirname(f) + "/" for f in files if f.endswith((".c", ".S"))}
    for d in sorted(source_dirs):
        if d not in rows:
            yield f"README.md layout: no row for {d}"
    for folder, row in rows.items():
        for name in re.findall(r"`([\w./-]+\.(?:c|h|S|sh|py))`", row):
            here = os.path.join(ROOT, folder)
            found = os.path.exists(os.path.join(ROOT, name)) or any(
                name in names or name in (os.path.relpath(os.path.join(dp, n), here)
                                          for n in names)
                for dp, _, names in os.walk(here))
            if not found:
                yield f"README.md layout: row {folder} names {name}, which is not in the tree"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--virt", default="vmx")
    ap.add_argument("--cc", default="gcc")
    ap.add_argument("--efi-inc", default="/usr/include/efi")
    args = ap.parse_args()
    if not os.path.isdir(os.path.join(ROOT, "vmm", args.virt)):
        print(f"check-layers: no backend folder vmm/{args.virt}/", file=sys.stderr)
        return 2

    files = list(tree_files())
    graph = {f: includes_of(f) for f in files}
    headers = {f for f in files if f.endswith(".h")}
    problems = list(layer_violations(files, graph))
    problems += list(layout_violations(files))
    problems += ["include circle: " + " -> ".join(c) for c in header_cycles(headers, graph)]
    for h in sorted(headers):
        err = compile_alone(h, args)
        if err:
            problems.append(f"{h}: does not compile on its own:\n    {err}")
    for p in problems:
        print(p)
    print(f"check-layers: {len(headers)} headers, {len(problems)} violations")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
