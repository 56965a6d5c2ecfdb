//! The node stays sans-IO: its sources use no socket, clock, thread or
//! random source, and it depends on nothing that does (DESIGN.md, "The
//! sans-IO core"). `cargo tree -p node` shows the same.

use std::path::Path;

/// Names whose presence in node's code would mean I/O, time or randomness
/// read from the system.
const FORBIDDEN: &[&str] = &[
    "std::net",
    "Instant",
    "SystemTime",
    "std::thread",
    "std::fs",
    "rand::",
    "glommio",
    "tokio",
    "async_channel",
    "RandomState",
];

/// Every `.rs` file under `dir`, subdirectories included.
fn sources(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found
}

#[test]
fn node_sources_use_no_io_clock_or_randomness() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for path in sources(&dir) {
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for name in FORBIDDEN {
                assert!(
                    !code.contains(name),
                    "{}:{}: uses {name}: {line}",
                    path.display(),
                    number + 1
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 10, "found the sources ({checked} files)");
}

#[test]
fn node_depends_only_on_core_crates() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let dependencies = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] table")
        .split("\n[")
        .next()
        .unwrap();
    let names: Vec<&str> = dependencies
        .lines()
        .filter_map(|l| l.split(['.', '=', ' ']).next())
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .collect();
    assert!(!names.is_empty());
    for name in names {
        // md-5: a pure hash function (SASL DIGEST-MD5), no I/O, clock or randomness.
        assert!(
            ["proto", "tree", "replication", "bytes", "md-5"].contains(&name),
            "node depends on {name}, which is not a sans-IO core crate"
        );
    }
}
