package packaging

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/elf"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/propgate/gateway/internal/testenv"
)

const pkg = "propgate-gateway"

// TestDebPackagesIntegration builds the three packages as `make package`
// does and checks what an installer gets: the files, their owners and
// modes, the conffiles, a static binary for the right machine with the
// version stamped, a config that passes `gateway check` once the env file is
// filled, lintian clean (with the justified overrides), and a unit that
// systemd-analyze verifies.
func TestDebPackagesIntegration(t *testing.T) {
	testenv.Integration(t)
	for _, tool := range []string{"dpkg-deb", "lintian", "systemd-analyze"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed: run scripts/install-deps.sh", tool)
		}
	}
	root := testenv.RepoRoot(t)
	out := t.TempDir()
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "armhf": elf.EM_ARM}
	var debs []string
	for _, arch := range []string{"amd64", "arm64", "armhf"} {
		cmd := exec.Command(filepath.Join(root, "scripts/package/build-deb.sh"), arch, out)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "VERSION=v1.4.0-3-gabcdef1")
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("build-deb.sh %s: %v\n%s", arch, err, b)
		}
		deb := strings.TrimSpace(string(b[strings.LastIndexByte(strings.TrimSpace(string(b)), '\n')+1:]))
		if want := filepath.Join(out, pkg+"_1.4.0+3.gabcdef1_"+arch+".deb"); deb != want {
			t.Fatalf("built %q, want %q", deb, want)
		}
		debs = append(debs, deb)
		t.Run(arch, func(t *testing.T) { checkDeb(t, deb, arch, machines[arch]) })
	}

	t.Run("lintian", func(t *testing.T) {
		args := append([]string{"--fail-on", "error,warning", "--tag-display-limit", "0"}, debs...)
		b, err := exec.Command("lintian", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("lintian: %v\n%s", err, b)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if regexp.MustCompile(`^[EW]: `).MatchString(line) {
				t.Errorf("lintian: %s", line)
			}
		}
	})

	t.Run("unit", func(t *testing.T) {
		x := extract(t, debs[0])
		unit, err := os.ReadFile(filepath.Join(x, "lib/systemd/system", pkg+".service"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Type=notify", "WatchdogSec=", "Restart=on-failure", "ProtectSystem=strict",
			"StateDirectory=" + pkg, "NoNewPrivileges=yes", "CapabilityBoundingSet=\n", "SupplementaryGroups=dialout",
			"User=propgate", "EnvironmentFile=/etc/" + pkg + "/gateway.env",
			"ExecStart=/usr/bin/gateway run -config /etc/" + pkg + "/gateway.yaml", "ExecReload=/bin/kill -HUP $MAINPID"} {
			if !strings.Contains(string(unit), want) {
				t.Errorf("unit lacks %q", want)
			}
		}
		// systemd-analyze verify checks ExecStart's binary exists and the
		// Documentation= man page: point both into the extracted package.
		dir := t.TempDir()
		local := strings.ReplaceAll(string(unit), "/usr/bin/gateway", filepath.Join(x, "usr/bin/gateway"))
		path := filepath.Join(dir, pkg+".service")
		if err := os.WriteFile(path, []byte(local), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("systemd-analyze", "verify", path)
		cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(x, "usr/share/man"))
		if b, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(b))) > 0 {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, b)
		}
	})
}

func checkDeb(t *testing.T, deb, arch string, machine elf.Machine) {
	info := run(t, "dpkg-deb", "-I", deb)
	for _, want := range []string{"Package: " + pkg, "Version: 1.4.0+3.gabcdef1", "Architecture: " + arch, "Depends: adduser"} {
		if !strings.Contains(info, "\n "+want+"\n") {
			t.Errorf("dpkg-deb -I lacks %q:\n%s", want, info)
		}
	}
	for _, script := range []string{"postinst", "prerm", "postrm", "conffiles", "md5sums"} {
		if !regexp.MustCompile(`\s` + script + `\s`).MatchString(info) {
			t.Errorf("control archive lacks %s", script)
		}
	}
	if conf := run(t, "dpkg-deb", "-f", deb, "Package"); strings.TrimSpace(conf) != pkg {
		t.Errorf("Package field %q", conf)
	}
	x := extract(t, deb)
	conffiles, err := os.ReadFile(filepath.Join(x, "DEBIAN/conffiles"))
	if err != nil {
		t.Fatal(err)
	}
	if string(conffiles) != "/etc/"+pkg+"/gateway.yaml\n/etc/"+pkg+"/gateway.env\n" {
		t.Errorf("conffiles = %q: both the config and the secrets must survive upgrades", conffiles)
	}

	// Owners and modes, as dpkg will install them.
	want := map[string]string{
		"./usr/bin/gateway":                        "-rwxr-xr-x root/root",
		"./etc/" + pkg + "/gateway.yaml":           "-rw-r--r-- root/root",
		"./etc/" + pkg + "/gateway.env":            "-rw------- root/root",
		"./lib/systemd/system/" + pkg + ".service": "-rw-r--r-- root/root",
		"./usr/lib/sysusers.d/" + pkg + ".conf":    "-rw-r--r-- root/root",
		"./var/lib/" + pkg + "/":                   "drwxr-xr-x root/root",
		"./usr/share/doc/" + pkg + "/copyright":    "-rw-r--r-- root/root",
		"./usr/share/doc/" + pkg + "/changelog.gz": "-rw-r--r-- root/root",
		"./usr/share/man/man1/gateway.1.gz":        "-rw-r--r-- root/root",
		"./usr/share/lintian/overrides/" + pkg:     "-rw-r--r-- root/root",
	}
	for _, line := range strings.Split(run(t, "dpkg-deb", "-c", deb), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		name := f[len(f)-1]
		if w, ok := want[name]; ok {
			if got := f[0] + " " + f[1]; got != w {
				t.Errorf("%s: %s, want %s", name, got, w)
			}
			delete(want, name)
		}
	}
	for name := range want {
		t.Errorf("package lacks %s", name)
	}
	sysusers, _ := os.ReadFile(filepath.Join(x, "usr/lib/sysusers.d", pkg+".conf"))
	if !strings.Contains(string(sysusers), "u propgate ") || !strings.Contains(string(sysusers), "m propgate dialout") {
		t.Errorf("sysusers.d does not create the propgate user in dialout:\n%s", sysusers)
	}

	// The binary: static (no interpreter), for the package's machine.
	bin := filepath.Join(x, "usr/bin/gateway")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != machine {
		t.Errorf("binary is for %v, want %v", f.Machine, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary is dynamically linked (has PT_INTERP); build with CGO_ENABLED=0")
		}
	}
	if arch != "amd64" {
		return
	}
	if v := run(t, bin, "version"); !strings.HasPrefix(v, "gateway v1.4.0-3-gabcdef1 (") {
		t.Errorf("gateway version = %q", v)
	}
	// The shipped config: refused with file:line while gateway.env is
	// empty, accepted once it is filled.
	conf := filepath.Join(x, "etc", pkg, "gateway.yaml")
	cmd := exec.Command(bin, "check", "-config", conf, "-env", filepath.Join(x, "etc", pkg, "gateway.env"))
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if b, err := cmd.CombinedOutput(); err == nil || !regexp.MustCompile(`gateway\.yaml:\d+`).Match(b) {
		t.Errorf("check with the empty env file: %v\n%s", err, b)
	}
	env := fillEnv(t, filepath.Join(x, "etc", pkg, "gateway.env"))
	cmd = exec.Command(bin, "check", "-config", conf, "-env", env)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), ": ok (") {
		t.Errorf("check with the filled env file: %v\n%s", err, b)
	}
	yaml, _ := os.ReadFile(conf)
	for _, want := range []string{"/var/lib/" + pkg + "/", "enabled: false"} {
		if !strings.Contains(string(yaml), want) {
			t.Errorf("shipped gateway.yaml lacks %q", want)
		}
	}
}

// fillEnv writes the shipped env file with every empty NAME= filled the way
// an installer would (a certificate for the TLS pair, random secrets).
func fillEnv(t *testing.T, shipped string) string {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	values := map[string]string{
		"INFLUX_URL": "http://10.0.0.5:8086", "INFLUX_ORG": "property-co", "INFLUX_BUCKET": "facilities",
		"MQTT_BROKER": "tcp://10.0.0.6:1883", "MQTT_USERNAME": "gateway",
		"GATEWAY_TLS_CERT": cert, "GATEWAY_TLS_KEY": key, "GATEWAY_PUBLIC_URL": "https://gw.site.example:8443",
	}
	raw, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		if name, ok := strings.CutSuffix(line, "="); ok && !strings.HasPrefix(name, "#") {
			v, ok := values[name]
			if !ok {
				v = randomHex(t, 32)
			}
			line += v
		}
		b.WriteString(line + "\n")
	}
	path := filepath.Join(dir, "gateway.env")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func selfSigned(t *testing.T, dir string) (cert, key string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gw.site.example"},
		DNSNames: []string{"gw.site.example"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func extract(t *testing.T, deb string) string {
	x := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, x)
	run(t, "dpkg-deb", "-e", deb, filepath.Join(x, "DEBIAN"))
	return x
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	b, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	return string(b)
}
