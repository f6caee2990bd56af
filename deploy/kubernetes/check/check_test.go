// Package check renders the Kubernetes manifests of deploy/kubernetes with
// kustomize, decodes every object strictly into the k8s.io/api types, and
// checks what must hold for the deployment to work. No cluster is used: the
// manifests are validated offline, not applied. It is a module of its own so
// that the mp module never depends on k8s.io.
package check

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// The ports and paths poolworker serves (poolworker -h; issue 9's
// -metrics-listen): the protocol and the health endpoints.
const (
	protocolPort = 7450
	metricsPort  = 9450
	livePath     = "/healthz"
	readyPath    = "/readyz"
)

// objects are the rendered manifests, one of each kind.
type objects struct {
	ns  *corev1.Namespace
	sec *corev1.Secret
	dep *appsv1.Deployment
	svc *corev1.Service
	pdb *policyv1.PodDisruptionBudget
	job *batchv1.Job

	// With the cert-manager component: its kinds, by name.
	issuers map[string]*cmIssuer
	certs   map[string]*cmCertificate
}

// cmIssuer and cmCertificate are the fields of cert-manager's Issuer and
// Certificate (cert-manager.io/v1) that the component uses, decoded
// strictly: a field misspelt or not in this subset fails. cert-manager's
// own Go types would bring its module and Kubernetes' controller runtime
// into this check.
type cmIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SelfSigned *struct{} `json:"selfSigned,omitempty"`
		CA         *struct {
			SecretName string `json:"secretName"`
		} `json:"ca,omitempty"`
	} `json:"spec"`
}

type cmCertificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		IsCA        bool     `json:"isCA,omitempty"`
		CommonName  string   `json:"commonName,omitempty"`
		SecretName  string   `json:"secretName"`
		Duration    string   `json:"duration,omitempty"`
		RenewBefore string   `json:"renewBefore,omitempty"`
		Usages      []string `json:"usages,omitempty"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm"`
			Size           int    `json:"size"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind"`
			Group string `json:"group"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// render runs kustomize on dir: kubectl kustomize, or the kustomize command
// where kubectl is missing.
func render(t *testing.T, dir string) []byte {
	t.Helper()
	// go test caches a passing result until a file the test opened changes;
	// kustomize's reads are not seen, so read the manifests here too.
	if err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			_, err = os.ReadFile(p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if _, err := exec.LookPath("kubectl"); err == nil {
		cmd = exec.Command("kubectl", "kustomize", dir)
	} else if _, err := exec.LookPath("kustomize"); err == nil {
		cmd = exec.Command("kustomize", "build", dir)
	} else {
		t.Skip("needs kubectl (or kustomize) in PATH to render the manifests; .ci/run installs kustomize where kubectl is missing")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
	}
	return out
}

// decode splits the rendered stream into documents and decodes each
// strictly (an unknown or duplicated field is an error) into its type.
func decode(t *testing.T, rendered []byte) objects {
	t.Helper()
	o := objects{issuers: map[string]*cmIssuer{}, certs: map[string]*cmCertificate{}}
	for i, doc := range regexp.MustCompile(`(?m)^---$`).Split(string(rendered), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var into any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Namespace":
			o.ns, into = new(corev1.Namespace), &o.ns
		case "v1 Secret":
			o.sec, into = new(corev1.Secret), &o.sec
		case "apps/v1 Deployment":
			o.dep, into = new(appsv1.Deployment), &o.dep
		case "v1 Service":
			o.svc, into = new(corev1.Service), &o.svc
		case "policy/v1 PodDisruptionBudget":
			o.pdb, into = new(policyv1.PodDisruptionBudget), &o.pdb
		case "batch/v1 Job":
			o.job, into = new(batchv1.Job), &o.job
		case "cert-manager.io/v1 Issuer":
			into = new(cmIssuer)
		case "cert-manager.io/v1 Certificate":
			into = new(cmCertificate)
		default:
			t.Fatalf("document %d: unexpected %s %s", i, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
			t.Fatalf("document %d (%s): %v", i, tm.Kind, err)
		}
		switch v := into.(type) {
		case *cmIssuer:
			o.issuers[v.Name] = v
		case *cmCertificate:
			o.certs[v.Name] = v
		}
	}
	if o.ns == nil || o.sec == nil || o.dep == nil || o.svc == nil || o.pdb == nil || o.job == nil {
		t.Fatalf("want a Namespace, Secret, Deployment, Service, PodDisruptionBudget and Job; got %+v", o)
	}
	return o
}

// flags returns a container's -name=value arguments.
func flags(t *testing.T, c corev1.Container) map[string]string {
	t.Helper()
	f := map[string]string{}
	for _, a := range c.Args {
		name, value, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !ok {
			t.Fatalf("container %s: argument %q: write flags as -name=value", c.Name, a)
		}
		f[name] = value
	}
	return f
}

// portOf resolves a probe's or Service's port (a number or a name) against
// the container's ports.
func portOf(t *testing.T, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, p.StrVal)
	return 0
}

// listenPort is the port of a host:port flag.
func listenPort(t *testing.T, flag, v string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(v)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("-%s=%q: want host:port", flag, v)
	}
	return int32(n)
}

// size is the byte count of a poolworker size flag (digits with an optional
// KiB, MiB or GiB), which must be given.
func size(t *testing.T, f map[string]string, flag string) int64 {
	t.Helper()
	v := f[flag]
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		t.Fatalf("-%s=%q: want a size such as 512MiB (the default is too large for the cache's volume)", flag, f[flag])
	}
	return n * mult
}

func mustSelector(t *testing.T, s *metav1.LabelSelector) labels.Selector {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	if sel.Empty() {
		t.Fatal("an empty selector selects everything")
	}
	return sel
}

// checkRestricted checks a pod meets what the image and the namespace's
// restricted Pod Security level need.
func checkRestricted(t *testing.T, what string, spec corev1.PodSpec, imageUID int64) {
	t.Helper()
	sc := spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: runAsNonRoot is not set", what)
	}
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != imageUID {
		t.Errorf("%s: runAsUser must be the image's USER, %d", what, imageUID)
	}
	if sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccompProfile RuntimeDefault is not set", what)
	}
	for _, c := range spec.Containers {
		cs := c.SecurityContext
		if cs == nil || cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem {
			t.Errorf("%s/%s: readOnlyRootFilesystem is not set", what, c.Name)
		}
		if cs == nil || cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation {
			t.Errorf("%s/%s: allowPrivilegeEscalation must be false", what, c.Name)
		}
		if cs == nil || cs.Capabilities == nil || len(cs.Capabilities.Drop) != 1 || cs.Capabilities.Drop[0] != "ALL" {
			t.Errorf("%s/%s: capabilities must drop ALL", what, c.Name)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[r]; !ok {
				t.Errorf("%s/%s: no %s request", what, c.Name, r)
			}
		}
		if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
			t.Errorf("%s/%s: no memory limit", what, c.Name)
		}
		for _, e := range c.Env {
			if e.Name == "MP_TOKEN" && e.Value != "" {
				t.Errorf("%s/%s: MP_TOKEN has a literal value: take it from the Secret", what, c.Name)
			}
		}
	}
}

// imageUID reads the numeric USER of deploy/Containerfile.
func imageUID(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("../../Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^USER (\d+):\d+$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("deploy/Containerfile has no numeric USER uid:gid")
	}
	uid, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return uid
}

func TestManifests(t *testing.T) {
	o := decode(t, render(t, ".."))
	check(t, o)
	if v, ok := o.sec.Data["token"]; !ok || len(v) != 0 {
		t.Errorf("the base's Secret must hold an empty token (poolworker then refuses to start) for overlays to replace; got %q", v)
	}
}

// TestOverlay follows the README: an overlay of the base replaces the token
// from a file of its own and sets the image, and the poolworkers and the Job
// take both.
func TestOverlay(t *testing.T) {
	base, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, base) // kustomize wants a relative path
	if err != nil {
		t.Fatal(err)
	}
	const token = "overlay-test-token-Qz81Lp5Vn2"
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kust := fmt.Sprintf(`resources:
  - %s
secretGenerator:
  - name: mp-token
    namespace: mp
    behavior: replace
    files:
      - token
images:
  - name: localhost/mp
    newName: registry.example/mp
    newTag: v1
`, rel)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kust), 0o644); err != nil {
		t.Fatal(err)
	}
	o := decode(t, render(t, dir))
	check(t, o)
	if got := strings.TrimSpace(string(o.sec.Data["token"])); got != token {
		t.Errorf("the overlay's Secret holds token %q, want %q", got, token)
	}
	for _, c := range append(o.dep.Spec.Template.Spec.Containers, o.job.Spec.Template.Spec.Containers...) {
		if c.Image != "registry.example/mp:v1" {
			t.Errorf("container %s: image %q, want the overlay's registry.example/mp:v1", c.Name, c.Image)
		}
	}
}

// TestCertManager renders the base with the cert-manager component, as the
// README's overlay does: the poolworkers and the Job still pass every check
// of the base, and each mounts the Secret of a Certificate whose usage is
// its side's (server auth for poolworkers, client auth for drivers), issued
// by a CA Issuer of the component, and passes the mounted files to mp.
func TestCertManager(t *testing.T) {
	base, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	kust := fmt.Sprintf("resources: [%s]\ncomponents: [%s]\n", rel, filepath.Join(rel, "cert-manager"))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kust), 0o644); err != nil {
		t.Fatal(err)
	}
	render(t, filepath.Join(base, "cert-manager")) // for go test's cache: see render
	o := decode(t, render(t, dir))
	check(t, o)
	for _, side := range []struct {
		what  string
		spec  corev1.PodSpec
		usage string
		files func(c corev1.Container) [3]string // cert, key, CA
	}{
		{"Deployment " + o.dep.Name, o.dep.Spec.Template.Spec, "server auth", func(c corev1.Container) [3]string {
			f := flags(t, c)
			return [3]string{f["tls-cert"], f["tls-key"], f["tls-ca"]}
		}},
		{"Job " + o.job.Name, o.job.Spec.Template.Spec, "client auth", func(c corev1.Container) [3]string {
			var f [3]string
			for _, e := range c.Env {
				switch e.Name {
				case "MP_TLS_CERT":
					f[0] = e.Value
				case "MP_TLS_KEY":
					f[1] = e.Value
				case "MP_TLS_CA":
					f[2] = e.Value
				}
			}
			return f
		}},
	} {
		c := side.spec.Containers[0]
		files := side.files(c)
		for i, want := range []string{"tls.crt", "tls.key", "ca.crt"} {
			if path.Base(files[i]) != want {
				t.Errorf("%s: certificate file %d is %q, want a %s", side.what, i, files[i], want)
			}
		}
		// The files' directory is a mount of a Secret that a Certificate
		// of the right usage fills, from the component's CA.
		var secret string
		for _, m := range c.VolumeMounts {
			if m.MountPath != path.Dir(files[0]) {
				continue
			}
			for _, v := range side.spec.Volumes {
				if v.Name == m.Name && v.Secret != nil {
					secret = v.Secret.SecretName
					if mode := v.Secret.DefaultMode; mode == nil || *mode&0o007 != 0 || *mode&0o040 == 0 {
						t.Errorf("%s: the certificate Secret's mode %v must be readable by the group (fsGroup) and not by others", side.what, mode)
					}
				}
			}
		}
		if side.spec.SecurityContext == nil || side.spec.SecurityContext.FSGroup == nil {
			t.Errorf("%s: no fsGroup: the Secret's files, root's, would not be readable by the container's user", side.what)
		}
		var cert *cmCertificate
		for _, cc := range o.certs {
			if cc.Spec.SecretName == secret && secret != "" {
				cert = cc
			}
		}
		if cert == nil {
			t.Errorf("%s: %s is not mounted from a Secret a Certificate fills (secret %q)", side.what, path.Dir(files[0]), secret)
			continue
		}
		if !contains(cert.Spec.Usages, side.usage) || !contains(cert.Spec.Usages, "digital signature") || cert.Spec.IsCA {
			t.Errorf("Certificate %s: usages %v, isCA %v; want %s and digital signature, not a CA", cert.Name, cert.Spec.Usages, cert.Spec.IsCA, side.usage)
		}
		iss := o.issuers[cert.Spec.IssuerRef.Name]
		if cert.Spec.IssuerRef.Kind != "Issuer" || iss == nil || iss.Spec.CA == nil {
			t.Errorf("Certificate %s: issuer %+v is not a CA Issuer of the component", cert.Name, cert.Spec.IssuerRef)
			continue
		}
		var ca *cmCertificate
		for _, cc := range o.certs {
			if cc.Spec.SecretName == iss.Spec.CA.SecretName {
				ca = cc
			}
		}
		if ca == nil || !ca.Spec.IsCA {
			t.Errorf("Issuer %s: its CA Secret %q is not filled by a CA Certificate", iss.Name, iss.Spec.CA.SecretName)
		}
	}
	for name, c := range o.certs {
		if c.Namespace != o.ns.Name {
			t.Errorf("Certificate %s is in namespace %q, want %q", name, c.Namespace, o.ns.Name)
		}
	}
	for name, iss := range o.issuers {
		if iss.Namespace != o.ns.Name {
			t.Errorf("Issuer %s is in namespace %q, want %q", name, iss.Namespace, o.ns.Name)
		}
	}
}

// check checks the invariants the deployment needs, on rendered objects.
func check(t *testing.T, o objects) {
	ns := o.ns.Name
	for _, m := range []metav1.ObjectMeta{o.sec.ObjectMeta, o.dep.ObjectMeta, o.svc.ObjectMeta, o.pdb.ObjectMeta, o.job.ObjectMeta} {
		if m.Namespace != ns {
			t.Errorf("%s is in namespace %q, want %q", m.Name, m.Namespace, ns)
		}
	}
	if o.ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace %s does not enforce the restricted Pod Security Standard", ns)
	}
	uid := imageUID(t)

	// The poolworkers: selected by their own labels, and only they.
	pod := o.dep.Spec.Template
	depSel := mustSelector(t, o.dep.Spec.Selector)
	podLabels := labels.Set(pod.Labels)
	jobLabels := labels.Set(o.job.Spec.Template.Labels)
	if !depSel.Matches(podLabels) {
		t.Errorf("the Deployment's selector %s does not match its pods' labels %v", depSel, podLabels)
	}
	if depSel.Matches(jobLabels) {
		t.Errorf("the Deployment's selector %s matches the Job's pods", depSel)
	}
	checkRestricted(t, "Deployment "+o.dep.Name, pod.Spec, uid)
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("want one poolworker container, got %d", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	f := flags(t, c)
	if _, ok := f["token"]; ok {
		t.Error("poolworker gets -token in its arguments (visible in ps): use -token-file")
	}
	if _, ok := c.Resources.Limits[corev1.ResourceCPU]; !ok {
		t.Error("poolworker has no CPU limit")
	} else if capacity, _ := strconv.Atoi(f["capacity"]); int64(capacity) != c.Resources.Limits.Cpu().Value() {
		t.Errorf("-capacity=%s, want the CPU limit %s", f["capacity"], c.Resources.Limits.Cpu())
	}

	// Probes on the health endpoints, on the port -metrics-listen serves.
	mport := listenPort(t, "metrics-listen", f["metrics-listen"])
	if mport != metricsPort {
		t.Errorf("-metrics-listen port %d, want %d", mport, metricsPort)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"readiness", c.ReadinessProbe, readyPath}, {"liveness", c.LivenessProbe, livePath}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("poolworker has no HTTP %s probe", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s probe path %q, want %q", p.name, p.probe.HTTPGet.Path, p.path)
		}
		if got := portOf(t, c, p.probe.HTTPGet.Port); got != mport {
			t.Errorf("%s probe port %d, want -metrics-listen's %d", p.name, got, mport)
		}
	}

	// Volumes: the token from the Secret as a file; the cache on an emptyDir.
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	volumeAt := func(p string) (corev1.Volume, corev1.VolumeMount, bool) {
		for _, v := range pod.Spec.Volumes {
			if m, ok := mounts[v.Name]; ok && m.MountPath == p {
				return v, m, true
			}
		}
		return corev1.Volume{}, corev1.VolumeMount{}, false
	}
	tokenFile := f["token-file"]
	if v, m, ok := volumeAt(path.Dir(tokenFile)); !ok || v.Secret == nil {
		t.Errorf("-token-file=%s is not in a volume of the Secret", tokenFile)
	} else {
		if v.Secret.SecretName != o.sec.Name {
			t.Errorf("the token volume names Secret %q, want %q", v.Secret.SecretName, o.sec.Name)
		}
		if _, ok := o.sec.Data[path.Base(tokenFile)]; !ok || len(v.Secret.Items) > 0 {
			t.Errorf("-token-file=%s: the Secret has no key %q", tokenFile, path.Base(tokenFile))
		}
		if !m.ReadOnly {
			t.Error("the token volume is mounted read-write")
		}
	}
	// The cache is a directory poolworker makes (mode 0700) in the emptyDir,
	// which is world-writable.
	if v, _, ok := volumeAt(path.Dir(f["cache-dir"])); !ok || v.EmptyDir == nil {
		t.Errorf("-cache-dir=%s is not a directory in an emptyDir volume (the root filesystem is read-only; the emptyDir is mode 0777, which poolworker refuses)", f["cache-dir"])
	} else if limit := v.EmptyDir.SizeLimit; limit == nil {
		t.Error("the cache's emptyDir has no sizeLimit: a node's disk is not the cache's to fill")
	} else if need := size(t, f, "cache-max") + size(t, f, "max-binary"); need > limit.Value() {
		t.Errorf("-cache-max=%s plus -max-binary=%s is %d bytes, more than the cache's sizeLimit %s: the pod would be evicted",
			f["cache-max"], f["max-binary"], need, limit)
	}

	// Draining: the grace period covers the preStop sleep and -drain-timeout.
	drain, err := time.ParseDuration(f["drain-timeout"])
	if err != nil {
		t.Errorf("-drain-timeout=%q: %v", f["drain-timeout"], err)
	}
	var preStop time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	if preStop == 0 {
		t.Error("no preStop sleep: the pod would get SIGTERM while still in the Service's name")
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= preStop+drain {
		t.Errorf("terminationGracePeriodSeconds %v must exceed the preStop sleep %v plus -drain-timeout %v", g, preStop, drain)
	}

	// The Service: headless, selecting the poolworkers, naming the protocol port.
	svc := o.svc
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s: clusterIP %q, want None (headless: its name resolves to every pod)", svc.Name, svc.Spec.ClusterIP)
	}
	svcSel := labels.SelectorFromSet(svc.Spec.Selector)
	if len(svc.Spec.Selector) == 0 || !svcSel.Matches(podLabels) || svcSel.Matches(jobLabels) {
		t.Errorf("Service selector %v must match the poolworkers' labels %v and not the Job's %v", svc.Spec.Selector, podLabels, jobLabels)
	}
	lport := listenPort(t, "listen", f["listen"])
	if lport != protocolPort {
		t.Errorf("-listen port %d, want %d", lport, protocolPort)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name == "" {
		t.Fatalf("Service %s: want one named port, got %+v", svc.Name, svc.Spec.Ports)
	}
	sp := svc.Spec.Ports[0]
	if sp.Port != protocolPort || portOf(t, c, sp.TargetPort) != lport {
		t.Errorf("Service port %d → %s, want %d → the container's -listen port %d", sp.Port, sp.TargetPort.String(), protocolPort, lport)
	}

	// The PodDisruptionBudget covers exactly the poolworkers.
	pdbSel := mustSelector(t, o.pdb.Spec.Selector)
	if pdbSel.String() != depSel.String() {
		t.Errorf("PodDisruptionBudget selector %s, want the Deployment's %s", pdbSel, depSel)
	}
	if o.pdb.Spec.MaxUnavailable == nil && o.pdb.Spec.MinAvailable == nil {
		t.Error("PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
	}

	// The Job: a driver whose MP_ADDRESS names the Service and its port, and
	// whose MP_TOKEN comes from the same Secret.
	job := o.job.Spec.Template.Spec
	checkRestricted(t, "Job "+o.job.Name, job, uid)
	if job.RestartPolicy != corev1.RestartPolicyNever && job.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("Job restartPolicy %q", job.RestartPolicy)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range job.Containers[0].Env {
		env[e.Name] = e
	}
	host, port, err := net.SplitHostPort(env["MP_ADDRESS"].Value)
	svcNames := []string{svc.Name, svc.Name + "." + ns, svc.Name + "." + ns + ".svc", svc.Name + "." + ns + ".svc.cluster.local"}
	if err != nil || !contains(svcNames, host) || port != strconv.Itoa(int(sp.Port)) {
		t.Errorf("Job MP_ADDRESS=%q, want the Service's name (one of %v) and port %d", env["MP_ADDRESS"].Value, svcNames, sp.Port)
	}
	tok := env["MP_TOKEN"].ValueFrom
	if tok == nil || tok.SecretKeyRef == nil || tok.SecretKeyRef.Name != o.sec.Name {
		t.Errorf("Job MP_TOKEN must come from Secret %s", o.sec.Name)
	} else if _, ok := o.sec.Data[tok.SecretKeyRef.Key]; !ok || tok.SecretKeyRef.Key != path.Base(tokenFile) {
		t.Errorf("Job MP_TOKEN is key %q of the Secret, want the poolworkers' %q", tok.SecretKeyRef.Key, path.Base(tokenFile))
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
