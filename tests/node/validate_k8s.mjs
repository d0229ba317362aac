// Validates every Kubernetes object in the YAML files given against the Kubernetes API
// schemas (the kubernetes-models package, offline; the prometheus-operator models for
// monitoring.coreos.com objects such as ServiceMonitor and PrometheusRule). Prints one line per object; exits 1 on the
// first file with an invalid or unknown object.
//   node validate_k8s.mjs deploy/kubernetes/*.yaml
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

let bad = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (doc.errors.length) {
      console.log(`${file}: YAML error: ${doc.errors[0].message}`);
      bad++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null) continue;
    const { apiVersion, kind } = obj;
    let Model;
    try {
      const pkg = String(apiVersion).startsWith("monitoring.coreos.com/")
        ? `@kubernetes-models/prometheus-operator/${apiVersion}`
        : `kubernetes-models/${apiVersion}/${kind}`;
      Model = (await import(pkg))[kind];
      if (!Model) throw new Error(`no ${kind} in ${pkg}`);
    } catch (e) {
      console.log(`${file}: ${apiVersion} ${kind}: not a Kubernetes API type (${e.message})`);
      bad++;
      continue;
    }
    try {
      new Model(obj).validate();
      console.log(`${file}: ${apiVersion} ${kind} ${obj.metadata?.name}: valid`);
    } catch (e) {
      console.log(`${file}: ${apiVersion} ${kind} ${obj.metadata?.name}: ${e.message}`);
      bad++;
    }
  }
}
process.exit(bad ? 1 : 0);
