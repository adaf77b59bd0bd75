package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files written by `kube pki --dir DIR`. Keys are 0600; nothing is regenerated when present.
const (
	caCert        = "ca.crt"
	caKey         = "ca.key"
	apiserverCert = "apiserver.crt"
	apiserverKey  = "apiserver.key"
	saKey         = "sa.key"
	saPub         = "sa.pub"
	adminCert     = "admin.crt"
	adminKey      = "admin.key"
	cmCert        = "controller-manager.crt"
	cmKey         = "controller-manager.key"
	adminKubecfg  = "admin.kubeconfig"
	cmKubecfg     = "controller-manager.kubeconfig"
)

const validity = 5 * 365 * 24 * time.Hour

func runPKI(args []string) int {
	fs := flag.NewFlagSet("pki", flag.ContinueOnError)
	dir := fs.String("dir", "", "folder for certificates, keys and kubeconfigs (required)")
	server := fs.String("server", "https://127.0.0.1:6443", "API server URL written into the kubeconfigs")
	context := fs.String("context", "systemprompt-dev", "kubeconfig context, cluster and user name")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "pki: --dir is required")
		return 2
	}
	if err := makePKI(*dir, *server, *context); err != nil {
		fmt.Fprintf(os.Stderr, "pki: %v\n", err)
		return 1
	}
	return 0
}

func makePKI(dir, server, context string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	p := func(name string) string { return filepath.Join(dir, name) }

	ca, caPriv, err := loadOrCreateCA(p(caCert), p(caKey))
	if err != nil {
		return err
	}
	serving := leafSpec{
		cn:   "kube-apiserver",
		dns:  []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		ips:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")},
		ext:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		cert: p(apiserverCert), key: p(apiserverKey),
	}
	admin := leafSpec{
		cn: "systemprompt-admin", org: []string{"system:masters"},
		ext:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		cert: p(adminCert), key: p(adminKey),
	}
	cm := leafSpec{
		cn: "system:kube-controller-manager", org: []string{"system:masters"},
		ext:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		cert: p(cmCert), key: p(cmKey),
	}
	for _, s := range []leafSpec{serving, admin, cm} {
		if err := ensureLeaf(s, ca, caPriv); err != nil {
			return err
		}
	}
	if err := ensureServiceAccountKeys(p(saKey), p(saPub)); err != nil {
		return err
	}
	if err := writeKubeconfig(p(adminKubecfg), server, context, p(caCert), admin); err != nil {
		return err
	}
	return writeKubeconfig(p(cmKubecfg), server, context, p(caCert), cm)
}

type leafSpec struct {
	cn        string
	org       []string
	dns       []string
	ips       []net.IP
	ext       []x509.ExtKeyUsage
	cert, key string
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func newKey() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) }

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
}

func loadOrCreateCA(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	if exists(certPath) && exists(keyPath) {
		cert, err := readCert(certPath)
		if err != nil {
			return nil, nil, err
		}
		key, err := readKey(keyPath)
		if err != nil {
			return nil, nil, err
		}
		return cert, key, nil
	}
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "systemprompt-dev-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(2 * validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, nil, err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func ensureLeaf(s leafSpec, ca *x509.Certificate, caKey crypto.Signer) error {
	if exists(s.cert) && exists(s.key) {
		if cert, err := readCert(s.cert); err == nil && cert.CheckSignatureFrom(ca) == nil && time.Now().Before(cert.NotAfter.Add(-24*time.Hour)) {
			return nil
		}
	}
	key, err := newKey()
	if err != nil {
		return err
	}
	sn, err := serial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: s.cn, Organization: s.org},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  s.ext,
		DNSNames:     s.dns,
		IPAddresses:  s.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return err
	}
	if err := writeKey(s.key, key); err != nil {
		return err
	}
	return writePEM(s.cert, "CERTIFICATE", der, 0o644)
}

func ensureServiceAccountKeys(keyPath, pubPath string) error {
	if exists(keyPath) && exists(pubPath) {
		return nil
	}
	key, err := newKey()
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return writePEM(pubPath, "PUBLIC KEY", pub, 0o644)
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: not a PEM certificate", path)
	}
	return x509.ParseCertificate(blk.Bytes)
}

func readKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: not a PEM key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New(path + ": unsupported key type")
	}
	return s, nil
}

func writeKey(path string, key *rsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return writeAtomic(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

// writeAtomic writes through a temporary file and a rename, so a reader never sees half a file.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// writeKubeconfig writes a kubeconfig with the CA and the client certificate embedded, so the file
// alone is enough to connect (it is 0600: it holds a private key).
func writeKubeconfig(path, server, name, caPath string, user leafSpec) error {
	b64 := func(p string) (string, error) {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(b), nil
	}
	ca, err := b64(caPath)
	if err != nil {
		return err
	}
	crt, err := b64(user.cert)
	if err != nil {
		return err
	}
	key, err := b64(user.key)
	if err != nil {
		return err
	}
	doc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority-data: %[3]s
users:
- name: %[4]s
  user:
    client-certificate-data: %[5]s
    client-key-data: %[6]s
contexts:
- name: %[1]s
  context:
    cluster: %[1]s
    user: %[4]s
current-context: %[1]s
preferences: {}
`, name, server, ca, user.cn, crt, key)
	return writeAtomic(path, []byte(doc), 0o600)
}
