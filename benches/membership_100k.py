#!/usr/bin/env python3
# Usage: python3 benches/membership_100k.py target/release/peerscope [members]
# (writes into /tmp/m100k/run; needs 127.0.0.1:19478 free)
# Measures a 100,000-member federation: RSS at start, a SIGHUP reload's /healthz gap, and
# a restart from the checkpoint (time to first /healthz 200).
import json, os, signal, subprocess, sys, threading, time, urllib.request
binary = sys.argv[1]; n = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
d = "/tmp/m100k/run"; os.makedirs(d, exist_ok=True)
def write_peers(extra):
    targets = [f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}:9" for i in range(n - 1)]
    targets.append(f"10.99.99.{extra}:9")
    json.dump([{"targets": targets}], open(f"{d}/peers.json", "w"))
write_peers(1)
open(f"{d}/peerscope.toml", "w").write(f'''node = "http://127.0.0.1:9"
name = "10.0.0.1:9"
interval = "5s"
timeout = "1s"
peers_file = "{d}/peers.json"
[checkpoint]
path = "{d}/state.json"
interval = "5s"
''')
listen = "127.0.0.1:19478"
def start():
    return subprocess.Popen([binary, "run", "--config", f"{d}/peerscope.toml", "--listen", listen],
                            stderr=open(f"{d}/stderr.log", "a"))
def healthz():
    try:
        return urllib.request.urlopen(f"http://{listen}/healthz", timeout=30).status
    except Exception as e:
        return getattr(e, "code", 0)
def rss(p):
    for line in open(f"/proc/{p.pid}/status"):
        if line.startswith("VmRSS"): return int(line.split()[1]) // 1024
t0 = time.time(); p = start()
while healthz() != 200: time.sleep(0.05)
print(f"{n} members: first /healthz 200 after {time.time()-t0:.2f} s; RSS {rss(p)} MiB")
time.sleep(12)  # a checkpoint is written
print(f"RSS after 12 s: {rss(p)} MiB")
# SIGHUP with a changed file; probe /healthz every 20 ms and record the longest answer.
worst = [0.0]; stop = [False]
def probe():
    while not stop[0]:
        s = time.time(); healthz(); worst[0] = max(worst[0], time.time() - s); time.sleep(0.02)
th = threading.Thread(target=probe); th.start(); time.sleep(0.5)
write_peers(2); s = time.time(); p.send_signal(signal.SIGHUP)
time.sleep(8); stop[0] = True; th.join()
print(f"SIGHUP reload: longest /healthz answer {worst[0]*1000:.0f} ms")
p.send_signal(signal.SIGTERM); p.wait()
t0 = time.time(); p = start()
while healthz() != 200: time.sleep(0.05)
print(f"restart from the checkpoint: first /healthz 200 after {time.time()-t0:.2f} s; RSS {rss(p)} MiB")
p.send_signal(signal.SIGTERM); p.wait()
