// Command ccaas-builder implements Fabric's external builder contract for chaincode run
// as a service. One binary serves the three steps; it is installed as bin/detect,
// bin/build and bin/release and dispatches on the name it was invoked by.
//
//	detect  SOURCE_DIR METADATA_DIR          exit 0 when metadata.json says type "ccaas"
//	build   SOURCE_DIR METADATA_DIR OUT_DIR  copy connection.json (and META-INF) to OUT_DIR
//	release OUT_DIR RELEASE_DIR              place connection.json where the peer reads it
//
// The peer dials the address in connection.json; there is no run step.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	connectionFile = "connection.json"
	metaInfDir     = "META-INF"
	// The peer reads the chaincode server's connection settings from here.
	releaseServerDir = "chaincode/server"
	// CouchDB index definitions travel here (unused with LevelDB, kept for completeness).
	releaseIndexDir = "statedb"
)

type packageMetadata struct {
	Type  string `json:"type"`
	Label string `json:"label"`
}

type connection struct {
	Address            string `json:"address"`
	DialTimeout        string `json:"dial_timeout"`
	TLSRequired        bool   `json:"tls_required"`
	ClientAuthRequired bool   `json:"client_auth_required"`
	ClientKey          string `json:"client_key"`
	ClientCert         string `json:"client_cert"`
	RootCert           string `json:"root_cert"`
}

func main() {
	step := filepath.Base(os.Args[0])
	if len(os.Args) > 1 && (os.Args[1] == "detect" || os.Args[1] == "build" || os.Args[1] == "release") {
		step, os.Args = os.Args[1], append(os.Args[:1], os.Args[2:]...)
	}
	var err error
	switch step {
	case "detect":
		err = detect(os.Args[1:])
	case "build":
		err = build(os.Args[1:])
	case "release":
		err = release(os.Args[1:])
	default:
		err = fmt.Errorf("invoked as %q: expected detect, build or release", step)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ccaas-builder %s: %v\n", step, err)
		os.Exit(1)
	}
}

func needArgs(args []string, n int, usage string) error {
	if len(args) != n {
		return fmt.Errorf("expected %d arguments (%s), got %d", n, usage, len(args))
	}
	return nil
}

func detect(args []string) error {
	if err := needArgs(args, 2, "SOURCE_DIR METADATA_DIR"); err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(args[1], "metadata.json"))
	if err != nil {
		return err
	}
	var md packageMetadata
	if err := json.Unmarshal(raw, &md); err != nil {
		return fmt.Errorf("metadata.json: %w", err)
	}
	if strings.ToLower(md.Type) != "ccaas" {
		return fmt.Errorf("package type %q is not ccaas", md.Type)
	}
	return nil
}

func build(args []string) error {
	if err := needArgs(args, 3, "SOURCE_DIR METADATA_DIR OUTPUT_DIR"); err != nil {
		return err
	}
	src, out := args[0], args[2]
	raw, err := os.ReadFile(filepath.Join(src, connectionFile))
	if err != nil {
		return fmt.Errorf("the package's code.tar.gz must hold %s: %w", connectionFile, err)
	}
	var conn connection
	if err := json.Unmarshal(raw, &conn); err != nil {
		return fmt.Errorf("%s: %w", connectionFile, err)
	}
	if conn.Address == "" {
		return fmt.Errorf("%s: address is empty", connectionFile)
	}
	if conn.TLSRequired && conn.RootCert == "" {
		return fmt.Errorf("%s: tls_required needs root_cert", connectionFile)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, connectionFile), raw, 0o644); err != nil {
		return err
	}
	metaInf := filepath.Join(src, metaInfDir)
	if _, err := os.Stat(metaInf); err == nil {
		return copyTree(metaInf, filepath.Join(out, metaInfDir))
	}
	return nil
}

func release(args []string) error {
	if err := needArgs(args, 2, "BUILD_OUTPUT_DIR RELEASE_DIR"); err != nil {
		return err
	}
	built, rel := args[0], args[1]
	serverDir := filepath.Join(rel, releaseServerDir)
	if err := os.MkdirAll(serverDir, 0o755); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(built, connectionFile), filepath.Join(serverDir, connectionFile)); err != nil {
		return err
	}
	indexes := filepath.Join(built, metaInfDir, "statedb")
	if _, err := os.Stat(indexes); err == nil {
		return copyTree(indexes, filepath.Join(rel, releaseIndexDir))
	}
	return nil
}

func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		target := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return errors.New("refusing to copy non-regular file " + path)
		}
		return copyFile(path, target)
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
