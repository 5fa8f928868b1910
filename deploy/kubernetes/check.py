#!/usr/bin/env python3
"""Cross-checks of deploy/kubernetes/*.yaml that a schema cannot make.

    check.py               check, print each finding, exit 1 on any
    check.py --extract DIR write the files the gateway container would see
                           (the ConfigMap's and the Secret's mounted files,
                           at their mount paths under DIR), for
                           `dbx-gateway --check` in a chroot

Needs PyYAML (scripts/test-deploy.sh installs it with kubernetes-validate,
which checks each manifest against the Kubernetes schemas).
"""
import os
import sys
import tomllib
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def load():
    objs = {}
    for f in sorted(HERE.glob("*.yaml")):
        if f.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(f.read_text()):
            if doc:
                objs[(doc["kind"], doc["metadata"]["name"])] = (f.name, doc)
    return objs


def one(objs, kind):
    found = [doc for (k, _), (_, doc) in objs.items() if k == kind]
    if len(found) != 1:
        raise SystemExit(f"check.py: expected one {kind}, found {len(found)}")
    return found[0]


def mounted_files(dep, objs):
    """(path in the container, text) of every file the gateway container
    gets from a ConfigMap or Secret volume."""
    pod = dep["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    (container,) = [c for c in pod["containers"] if c["name"] == "gateway"]
    files = {}
    for m in container.get("volumeMounts", []):
        v = volumes.get(m["name"], {})
        if "configMap" in v:
            data = objs[("ConfigMap", v["configMap"]["name"])][1].get("data", {})
            items = v["configMap"].get("items") or [{"key": k, "path": k} for k in data]
            for it in items:
                files[os.path.join(m["mountPath"], it["path"])] = data[it["key"]]
        elif "secret" in v:
            sec = objs[("Secret", v["secret"]["secretName"])][1]
            for k, val in sec.get("stringData", {}).items():
                files[os.path.join(m["mountPath"], k)] = val
    return files


def main():
    objs = load()
    dep = one(objs, "Deployment")
    if len(sys.argv) == 3 and sys.argv[1] == "--extract":
        out = Path(sys.argv[2])
        for path, text in mounted_files(dep, objs).items():
            p = out / path.lstrip("/")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        return 0
    if len(sys.argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2

    problems = []

    def need(cond, what):
        print(("ok: " if cond else "PROBLEM: ") + what)
        if not cond:
            problems.append(what)

    # kustomization.yaml lists every manifest, and the image it rewrites.
    kust = yaml.safe_load((HERE / "kustomization.yaml").read_text())
    files = sorted(f.name for f in HERE.glob("*.yaml") if f.name != "kustomization.yaml")
    need(sorted(kust["resources"]) == files, f"kustomization.yaml lists {files}")

    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    (c,) = [c for c in pod["containers"] if c["name"] == "gateway"]
    need(c["image"] in [i["name"] for i in kust.get("images", [])],
         f"kustomization.yaml rewrites the container image `{c['image']}`")
    need(dep["spec"]["replicas"] >= 2, "at least 2 replicas")

    def selects(sel):
        return all(labels.get(k) == v for k, v in sel.items())

    need(selects(dep["spec"]["selector"]["matchLabels"]), "the Deployment's selector matches its pods")
    svc = one(objs, "Service")
    need(selects(svc["spec"]["selector"]), "the Service selects the gateway pods")
    pdb = one(objs, "PodDisruptionBudget")
    need(selects(pdb["spec"]["selector"]["matchLabels"]), "the PodDisruptionBudget selects the gateway pods")
    need(pdb["spec"].get("minAvailable", 0) < dep["spec"]["replicas"],
         "the PodDisruptionBudget leaves room to evict a pod")
    hpa = one(objs, "HorizontalPodAutoscaler")
    ref = hpa["spec"]["scaleTargetRef"]
    need(ref["kind"] == "Deployment" and ref["name"] == dep["metadata"]["name"], "the HPA scales this Deployment")
    need(hpa["spec"]["minReplicas"] >= 2, "the HPA keeps at least 2 replicas")

    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for sp in svc["spec"]["ports"]:
        need(sp["targetPort"] in ports or sp["targetPort"] in ports.values(),
             f"the Service's targetPort {sp['targetPort']} is a container port")
    for probe, path in [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
        g = c.get(probe, {}).get("httpGet", {})
        need(g.get("path") == path and g.get("port") in ports, f"{probe}: GET {path} on a named container port")

    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    need(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0, "the pod runs as a non-root uid")
    need(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "the RuntimeDefault seccomp profile")
    need(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
    need(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")
    need(csc.get("capabilities", {}).get("drop") == ["ALL"], "every capability dropped")
    res = c.get("resources", {})
    need("cpu" in res.get("requests", {}), "a CPU request (the HPA's utilisation is relative to it)")
    need("memory" in res.get("requests", {}) and "memory" in res.get("limits", {}), "memory request and limit")
    need(not any("secretKeyRef" in str(e) for e in c.get("env", [])), "no secret in environment variables")

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        v = volumes.get(m["name"])
        need(v is not None, f"volume `{m['name']}` exists")
        if v and "configMap" in v:
            need(("ConfigMap", v["configMap"]["name"]) in objs, f"ConfigMap `{v['configMap']['name']}` is defined")
        if v and "secret" in v:
            need(("Secret", v["secret"]["secretName"]) in objs, f"Secret `{v['secret']['secretName']}` is defined")

    files = mounted_files(dep, objs)
    cfg_path = c["args"][c["args"].index("--config") + 1]
    need(cfg_path in files, f"the --config file {cfg_path} is mounted from the ConfigMap")
    cfg = tomllib.loads(files.get(cfg_path, ""))
    listen_port = int(cfg.get("listen", "127.0.0.1:8080").rsplit(":", 1)[1])
    need(cfg.get("listen", "").startswith("0.0.0.0:"), "the gateway listens on every interface (0.0.0.0)")
    need(listen_port in ports.values(), f"the gateway's listen port {listen_port} is the container port")
    secret_paths = [k["secret_file"] for k in cfg.get("auth", {}).get("keys", []) if "secret_file" in k]
    secret_paths += list(cfg.get("password_files", {}).values())
    for p in secret_paths:
        need(os.path.isabs(p) and p in files, f"{p} (named in gateway.toml) is a mounted Secret key")
    need(not any("secret_env" in k for k in cfg.get("auth", {}).get("keys", [])), "no secret_env (secrets come as files)")
    dbs = cfg.get("databases", {})
    shared = cfg.get("rate_limit", {}).get("shared_database")
    need(shared in dbs and dbs[shared]["url"].startswith(("redis://", "rediss://")),
         "rate limits are shared by the replicas through Redis ([rate_limit] shared_database)")
    need(not any(d["url"].startswith("sqlite:") for d in dbs.values()),
         "no SQLite database (each replica would have its own file)")
    drain = cfg.get("shutdown", {}).get("drain_timeout_secs", 30)
    pre = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    need(pre + drain < grace,
         f"terminationGracePeriodSeconds {grace} > preStop {pre} + drain_timeout_secs {drain}")
    sec = one(objs, "Secret")
    need(all("PLACEHOLDER" in v for v in sec.get("stringData", {}).values()) and "data" not in sec,
         "the Secret holds only PLACEHOLDER values")

    print(f"check.py: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
