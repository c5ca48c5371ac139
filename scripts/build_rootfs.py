"""Build the container image's filesystem from the Dockerfile without a Docker engine, and run it.

    sudo python3 scripts/build_rootfs.py build [--build-arg EXTRAS=fast,otel]
    sudo python3 scripts/build_rootfs.py run [-e NAME=VALUE ...] [-- ARGS]

`build` reads the Dockerfile (the single source of the steps) and executes FROM, WORKDIR, COPY (also
--from a stage), ARG, ENV, RUN (in a chroot) and USER; EXPOSE, HEALTHCHECK, ENTRYPOINT and CMD are
recorded in `config.json`. `run` starts ENTRYPOINT + CMD (ARGS replace CMD, as `docker run` does) in
that root as the image's USER. Needs root (chroot, mount), `debootstrap` and the network to Debian
and PyPI. Everything is written under `.cache/rootfs/` (git-ignored).

`FROM python:3.11-slim` maps to a Debian bookworm root (debootstrap, minbase) whose python3 is 3.11,
made into a virtual environment at /usr/local: the slim image's paths (/usr/local/bin/python and pip,
/usr/local/lib/python3.11/site-packages, scripts with `#!/usr/local/bin/python`), with Debian's CPython
3.11.2 instead of python.org's newest 3.11 build. No other base image is mapped.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "rootfs"
MIRROR = "http://deb.debian.org/debian"
# What stands in for python:3.11-slim (see the module docstring); the stamp names it, so a changed
# recipe builds a new base.
BASE_RECIPE = ("bookworm", "minbase", "python3,python3-venv,ca-certificates", "venv:/usr/local")
BASES = {"python:3.11-slim"}
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Stage:
    name: str
    root: Path
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=lambda: {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"})
    args: dict[str, str] = field(default_factory=dict)
    config: dict[str, object] = field(default_factory=dict)


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(KEYWORD, rest) per instruction: continuation lines joined, comment lines dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        if line.strip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        if text:
            keyword, _, rest = text.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def base_root() -> Path:
    """The Debian root standing in for python:3.11-slim, built once and kept in .cache/rootfs."""
    base = CACHE / "base-python3.11"
    stamp = base / ".recipe"
    if stamp.exists() and stamp.read_text() == repr(BASE_RECIPE):
        return base
    remove(base)
    suite, variant, include, _ = BASE_RECIPE
    tmp = CACHE / "base.tmp"
    remove(tmp)
    run(["debootstrap", f"--variant={variant}", f"--include={include}", suite, str(tmp), MIRROR])
    chrooted(tmp, ["python3", "-m", "venv", "/usr/local"], {"PATH": DEFAULT_PATH})
    chrooted(tmp, ["sh", "-c", "apt-get clean && rm -rf /var/lib/apt/lists/*"], {"PATH": DEFAULT_PATH})
    (tmp / ".recipe").write_text(repr(BASE_RECIPE))
    tmp.rename(base)
    return base


def remove(root: Path) -> None:
    """rmtree, after unmounting a /proc a killed run left behind (never delete through a mount)."""
    if os.path.ismount(root / "proc"):
        subprocess.run(["umount", "--lazy", str(root / "proc")], check=True)
    shutil.rmtree(root, ignore_errors=True)


def run(command: list[str]) -> None:
    print("+", shlex.join(command), flush=True)
    subprocess.run(command, check=True)


def chrooted(root: Path, command: list[str], env: dict[str, str], workdir: str = "/") -> None:
    """A command in `root` with /proc mounted and only `env` (as a build step sees it)."""
    (root / "proc").mkdir(exist_ok=True)
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    run(["mount", "-t", "proc", "proc", str(root / "proc")])
    try:
        line = [f"{k}={v}" for k, v in env.items()]
        run(["chroot", str(root), "/usr/bin/env", "-i", *line, "/bin/sh", "-c",
             f"cd {shlex.quote(workdir)} && exec {shlex.join(command)}"])  # fmt: skip
    finally:
        subprocess.run(["umount", str(root / "proc")], check=False)


def ignored(context: Path) -> list[str]:
    path = context / ".dockerignore"
    lines = path.read_text().splitlines() if path.exists() else []
    return [p.strip().removeprefix("**/") for p in lines if p.strip() and not p.startswith("#")]


def copy(source: Path, dest: Path, skip: list[str]) -> None:
    """Docker's COPY: a directory's contents are merged into `dest`; a file becomes `dest`."""
    if source.is_dir():
        for item in source.iterdir():
            if not any(fnmatch.fnmatch(item.name, pattern) for pattern in skip):
                copy(item, dest / item.name, skip)
        dest.mkdir(parents=True, exist_ok=True)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, dest, follow_symlinks=False)


def inside(stage: Stage, path: str) -> Path:
    absolute = path if path.startswith("/") else f"{stage.workdir.rstrip('/')}/{path}"
    return stage.root / os.path.normpath(absolute).lstrip("/")


def build(dockerfile: Path, build_args: dict[str, str], out: Path) -> Path:
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    skip = ignored(dockerfile.parent)
    ca = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    for keyword, rest in instructions(dockerfile):
        print(f"== {keyword} {rest}", flush=True)
        if keyword == "FROM":
            image, _, name = rest.partition(" AS ")
            if image.strip() not in BASES:
                raise SystemExit(f"build_rootfs: no mapping for the base image {image!r}")
            root = out / f"stage{len(stages)}"
            remove(root)
            run(["cp", "-a", str(base_root()), str(root)])
            stage = Stage(name.strip() or str(len(stages)), root)
            stages[stage.name] = stage
            continue
        assert stage is not None, "an instruction before FROM"
        if keyword == "WORKDIR":
            stage.workdir = rest
            inside(stage, rest).mkdir(parents=True, exist_ok=True)
        elif keyword == "ARG":
            name, _, default = rest.partition("=")
            stage.args[name] = build_args.get(name, default)
        elif keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                stage.env[name] = value
        elif keyword == "COPY":
            words = shlex.split(rest)
            origin = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            words = [w for w in words if not w.startswith("--")]
            *sources, dest = words
            for source in sources:
                path = stages[origin].root / source.lstrip("/") if origin else dockerfile.parent / source
                target = inside(stage, dest)
                if dest.endswith("/") or len(sources) > 1:
                    target = target / Path(source).name if path.is_file() else target
                copy(path, target, skip)
        elif keyword == "RUN":
            # The build machine's CA bundle for PyPI (a TLS-inspecting network needs it; `docker
            # build` there needs the same), present during the step only.
            shutil.copy(ca, stage.root / "tmp" / ".build-ca.pem")
            trust = {"PIP_CERT": "/tmp/.build-ca.pem", "PIP_ROOT_USER_ACTION": "ignore"}
            try:
                chrooted(stage.root, ["sh", "-c", rest], {**stage.env, **stage.args, **trust}, stage.workdir)
            finally:
                (stage.root / "tmp" / ".build-ca.pem").unlink()
        elif keyword in ("USER", "EXPOSE", "HEALTHCHECK"):
            stage.config[keyword.lower()] = rest
        elif keyword in ("ENTRYPOINT", "CMD"):
            stage.config[keyword.lower()] = json.loads(rest)  # exec form only
        else:
            raise SystemExit(f"build_rootfs: unsupported instruction {keyword}")
    assert stage is not None
    final = out / "rootfs"
    remove(final)
    stage.root.rename(final)
    for other in stages.values():
        remove(other.root)
    config = {**stage.config, "env": stage.env, "workdir": stage.workdir}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return final


def user_ids(root: Path, user: str) -> tuple[int, int]:
    """Docker's USER: a name or uid; the group is the passwd entry's, else 0."""
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if user in (fields[0], fields[2]):
            return int(fields[2]), int(fields[3])
    return int(user), 0


def run_image(out: Path, env: list[str], args: list[str]) -> int:
    config = json.loads((out / "config.json").read_text())
    root = out / "rootfs"
    uid, gid = user_ids(root, str(config.get("user", "0")))
    command = [*config.get("entrypoint", []), *(args or config.get("cmd", []))]
    environment = [f"{k}={v}" for k, v in config["env"].items()] + ["HOME=/", *env]
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    try:
        chroot = ["chroot", f"--userspec={uid}:{gid}", str(root)]
        inner = ["/usr/bin/env", "-i", *environment, "/bin/sh", "-c",
                 f'cd {shlex.quote(config["workdir"])} && exec "$@"', "sh", *command]  # fmt: skip
        child = subprocess.Popen([*chroot, *inner])
        for signum in (signal.SIGTERM, signal.SIGINT):  # `docker stop` / Ctrl-C reach the proxy
            signal.signal(signum, lambda received, _: child.send_signal(received))
        return child.wait()
    finally:
        subprocess.run(["umount", "--lazy", str(root / "proc")], check=False)


def main() -> int:
    parser = argparse.ArgumentParser(prog="build_rootfs", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "run"])
    parser.add_argument("--out", type=Path, default=CACHE / "image", help="default .cache/rootfs/image")
    parser.add_argument("--file", type=Path, default=ROOT / "Dockerfile")
    parser.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("-e", "--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("args", nargs="*", help="run: replaces CMD, like `docker run IMAGE ARGS`")
    options = parser.parse_args()
    if options.command == "build":
        options.out.mkdir(parents=True, exist_ok=True)
        build_args = dict(pair.split("=", 1) for pair in options.build_arg)
        print(f"rootfs: {build(options.file.resolve(), build_args, options.out)}")
        return 0
    return run_image(options.out, options.env, options.args)


if __name__ == "__main__":
    sys.exit(main())
