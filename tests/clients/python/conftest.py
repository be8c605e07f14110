"""Starts and stops real `confab` processes on free loopback ports with temp data dirs."""
import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

TARGET = os.environ.get('CARGO_TARGET_DIR') or os.path.join(os.path.expanduser('~'), '.cache', 'confab-target')
BINARY = os.environ.get('CONFAB_BIN') or os.path.join(TARGET, 'release', 'confab')
SECRET = 'client-tests-cluster-secret-0123456789'

_live = []


@atexit.register
def _kill_leftovers():
    for proc in _live:
        if proc.poll() is None:
            proc.kill()


# Ports come from below the kernel's ephemeral range (32768 and up), so no outgoing connection
# can take one between this check and the server's bind; a counter keeps them distinct.
PORTS_FIRST = 12000
PORTS_SPAN = 20000
_next_port = [(os.getpid() * 7919) % PORTS_SPAN]
START_ATTEMPTS = 3


class ExitedEarly(RuntimeError):
    """A node exited before it was ready, most likely because its port was taken after all."""


def free_port():
    for _ in range(PORTS_SPAN):
        port = PORTS_FIRST + _next_port[0]
        _next_port[0] = (_next_port[0] + 1) % PORTS_SPAN
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(('127.0.0.1', port))
            except OSError:
                continue
            return port
    raise RuntimeError('no free loopback port')


def wait_ready(port, proc, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ExitedEarly(f'confab exited early with {proc.returncode}')
        try:
            with urllib.request.urlopen(f'http://127.0.0.1:{port}/api/v4/system/ping', timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f'confab on port {port} did not come up')


class Servers:
    def __init__(self, count):
        if not os.path.exists(BINARY):
            raise RuntimeError(f'confab binary not found at {BINARY}; build it with cargo build --release --bin confab')
        self.dir = tempfile.mkdtemp(prefix='confab-py-')
        self.procs = []
        ports = [(free_port(), free_port()) for _ in range(count)]
        members = ','.join(f'{i + 1}=127.0.0.1:{raft}' for i, (_, raft) in enumerate(ports))
        self.ports = [api for api, _ in ports]
        try:
            for i, (api, raft) in enumerate(ports):
                node_dir = os.path.join(self.dir, f'n{i + 1}')
                os.mkdir(node_dir)
                args = [BINARY, 'serve', '--node-id', str(i + 1), '--listen', f'127.0.0.1:{api}',
                        '--raft-listen', f'127.0.0.1:{raft}', '--data-dir', os.path.join(node_dir, 'data')]
                if count > 1:
                    args += ['--initial-members', members]
                env = dict(os.environ, CONFAB_CLUSTER_SECRET=SECRET, CONFAB_LOG='warn')
                proc = subprocess.Popen(args, cwd=node_dir, env=env, stdout=subprocess.DEVNULL)
                self.procs.append(proc)
                _live.append(proc)
            for port, proc in zip(self.ports, self.procs):
                wait_ready(port, proc)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(params=[1, 3], ids=['single-node', 'three-node-cluster'])
def servers(request):
    failures = []
    for _ in range(START_ATTEMPTS):
        try:
            s = Servers(request.param)
            break
        except ExitedEarly as e:
            failures.append(str(e))
    else:
        raise RuntimeError(f'confab did not start: {failures}')
    try:
        yield s
    finally:
        s.stop()
