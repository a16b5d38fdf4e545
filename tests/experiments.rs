//! Every experiment file parses; the CPU-scale ones validate fully (their data is the shared
//! data), and the effective spec `odm check` prints parses back to the same spec.

mod common;

use odm::spec::load::parse_str;

#[test]
fn experiment_files_parse_and_round_trip() {
    let mut n = 0;
    for e in walkdir::WalkDir::new(common::repo().join("experiments")) {
        let e = e.unwrap();
        if e.path().extension().is_none_or(|x| x != "ron") {
            continue;
        }
        n += 1;
        let text = std::fs::read_to_string(e.path()).unwrap();
        let spec = parse_str(&e.path().display().to_string(), &text).unwrap();
        let again = parse_str("effective", &odm::commands::pretty(&spec)).unwrap();
        assert_eq!(spec, again, "{} does not round-trip", e.path().display());
        let gpu = e.path().components().any(|c| c.as_os_str() == "gpu");
        if !gpu && common::data_root().is_some() {
            let loaded = odm::spec::load_file(e.path()).unwrap();
            assert!(!loaded.runs.is_empty());
        }
    }
    assert!(n >= 10, "found {n} experiment files");
}
