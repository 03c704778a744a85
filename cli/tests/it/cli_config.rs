//! Configuration from the environment, through the binary: only `RIPOSTE_*` variables that
//! name a configuration section are configuration, and a misspelt key inside one is an error.

use std::process::Command;

fn plan_with_env(vars: &[(&str, &str)]) -> std::process::Output {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_riposte"));
    cmd.current_dir(root).args([
        "plan",
        "--alert",
        "tests/fixtures/alerts/lacework-details.json",
        "--format",
        "json",
    ]);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn unrelated_riposte_variables_are_not_configuration() {
    let out = plan_with_env(&[("RIPOSTE_TEST_SOMETHING", "x"), ("RIPOSTE_LOG", "warn")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_misspelt_key_in_a_section_is_an_error() {
    let out = plan_with_env(&[("RIPOSTE_AZURE__CLIENT_SECRE", "x")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("client_secre"), "{err}");
}

#[test]
fn the_environment_overrides_the_file() {
    let out = plan_with_env(&[(
        "RIPOSTE_ACTIONS__MFA_GROUP_ID",
        "9f0c7e3a-1d2b-4c5e-8f6a-000000000101",
    )]);
    assert!(out.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mfa = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "require_mfa")
        .unwrap();
    assert_eq!(mfa["status"], "planned", "{mfa}");
    assert!(
        mfa["requests"][0]["url"]
            .as_str()
            .unwrap()
            .contains("9f0c7e3a-1d2b-4c5e-8f6a-000000000101")
    );
}

#[test]
fn a_bad_alert_is_rejected_with_the_field_path_and_exit_1() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = Command::new(env!("CARGO_BIN_EXE_riposte"))
        .current_dir(root)
        .args([
            "plan",
            "--alert",
            "tests/fixtures/alerts/bad-azure-monitor-time.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("data.essentials.firedDateTime"), "{err}");
}

#[test]
fn a_bad_playbook_gives_file_line_column_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "name: bad\nsteps:\n  - id: a\n    uses: entra.disable_usr\n    with: {user: x}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_riposte"))
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "{}:4:11: unknown action `entra.disable_usr`; did you mean `entra.disable_user`?",
            file.display()
        )),
        "{text}"
    );
}

#[test]
fn the_demo_runs_end_to_end_on_embedded_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_riposte"))
        .current_dir(dir.path()) // no checkout here: the demo uses its bundled files
        .args(["demo", "--once", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("1 accounts disabled"), "{text}");
    assert!(text.contains("2 disk snapshots taken"), "{text}");
    assert!(text.contains("hash-chained records, verified"), "{text}");
}
