//! `riposte validate`: every problem in one pass, each at its exact `file:line:column`.

use std::path::Path;

use riposte::playbook::load_str;

/// The diagnostics for `text`, as `line:column: message` strings.
fn problems(text: &str) -> Vec<String> {
    match load_str(text, Path::new("p.yaml")) {
        Ok(_) => Vec::new(),
        Err(d) => {
            d.0.iter()
                .map(|d| format!("{}:{}: {}", d.pos.line, d.pos.column, d.message))
                .collect()
        }
    }
}

fn assert_has(problems: &[String], expected: &str) {
    assert!(
        problems.iter().any(|p| p.starts_with(expected)),
        "expected a problem starting with {expected:?}, got {problems:#?}"
    );
}

const GOOD: &str = "\
name: ok
on:
  - source: lacework
    kind: first_access
steps:
  - id: user
    uses: entra.get_user
    with:
      user: ${{ alert.principal.upn }}
  - id: suspend
    uses: entra.disable_user
    needs: [user]
    with:
      user: ${{ steps.user.outputs.id }}
";

#[test]
fn a_good_playbook_has_no_problems() {
    assert_eq!(problems(GOOD), Vec::<String>::new());
}

#[test]
fn unknown_keys_are_located_with_a_suggestion() {
    let p = problems(&GOOD.replace("    needs: [user]", "    nedds: [user]"));
    assert_has(
        &p,
        "12:5: unknown key `nedds` in a step; did you mean `needs`?",
    );
}

#[test]
fn unknown_actions_suggest_the_closest_name() {
    let p = problems(&GOOD.replace("entra.disable_user", "entra.disable_usr"));
    assert_has(
        &p,
        "11:11: unknown action `entra.disable_usr`; did you mean `entra.disable_user`?",
    );
}

#[test]
fn parameters_must_fit_the_action_schema() {
    let p = problems(&GOOD.replace("      user: ${{ steps.user.outputs.id }}", "      usr: x"));
    assert_has(
        &p,
        "14:7: `entra.disable_user` has no parameter `usr`; did you mean `user`?",
    );
    assert_has(&p, "14:7: `entra.disable_user` needs parameter `user`");
    let p = problems(&GOOD.replace("      user: ${{ steps.user.outputs.id }}", "      user: 42"));
    assert_has(
        &p,
        "14:13: parameter `user` of `entra.disable_user`: expected string, found a number",
    );
}

#[test]
fn needs_cycles_are_reported() {
    let text = GOOD.replace(
        "  - id: user\n    uses: entra.get_user\n",
        "  - id: user\n    uses: entra.get_user\n    needs: [suspend]\n",
    );
    let p = problems(&text);
    assert!(
        p.iter().any(|m| m.contains("`needs` forms a cycle")),
        "{p:#?}"
    );
}

#[test]
fn references_must_exist_and_be_dependencies() {
    let p = problems(&GOOD.replace("    needs: [user]\n", ""));
    assert_has(
        &p,
        "13:13: step `suspend` reads `steps.user` but does not depend on it; add `user` to its `needs`",
    );
    let p = problems(&GOOD.replace("steps.user.outputs.id", "steps.usr.outputs.id"));
    assert_has(
        &p,
        "14:13: `steps.usr` refers to a step that does not exist",
    );
    let p = problems(&GOOD.replace("needs: [user]", "needs: [usr]"));
    assert_has(
        &p,
        "12:13: `needs` names step `usr`, which does not exist; did you mean `user`?",
    );
}

#[test]
fn undefined_variables_are_reported() {
    let p = problems(&GOOD.replace("alert.principal.upn", "alert.principal.email"));
    assert_has(&p, "9:13: `alert.principal.email` is not a principal field");
    let p = problems(&GOOD.replace("alert.principal.upn", "inputs.who"));
    assert_has(&p, "9:13: undefined variable `inputs.who`");
    let p = problems(&GOOD.replace("alert.principal.upn", "usr"));
    assert_has(&p, "9:13: undefined variable `usr`");
    let p = problems(&GOOD.replace("${{ alert.principal.upn }}", "\"x ${{ item }}\""));
    assert_has(&p, "9:16: undefined variable `item`");
}

#[test]
fn duplicate_ids_are_reported_at_the_second() {
    let text = format!("{GOOD}  - id: user\n    uses: entra.get_user\n    with: {{user: a}}\n");
    assert_has(
        &problems(&text),
        "15:9: duplicate step id `user` (first at line 6)",
    );
}

#[test]
fn expression_syntax_errors_are_located() {
    let p = problems(&GOOD.replace("${{ alert.principal.upn }}", "${{ alert.principal.upn + }}"));
    assert_has(&p, "9:13: invalid expression:");
}

#[test]
fn every_problem_is_reported_in_one_pass() {
    let text = GOOD
        .replace("    needs: [user]", "    nedds: [user]")
        .replace("entra.get_user", "entra.get_usr")
        .replace(
            "kind: first_access",
            "kind: first_access\n    min_severity: urgent",
        );
    let p = problems(&text);
    assert!(p.len() >= 3, "{p:#?}");
}

#[test]
fn yaml_syntax_errors_are_located() {
    let p = problems("name: x\nsteps: [\n");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].contains("invalid YAML"), "{p:#?}");
}

#[test]
fn a_notification_target_is_never_a_template() {
    let text = "name: notify\nsteps:\n  - id: tell\n    uses: notify.webhook\n    with:\n      url: ${{ alert.raw.hook }}\n      message: hi\n";
    assert_has(
        &problems(text),
        "6:12: parameter `url` of `notify.webhook` must be written out",
    );
    let literal = "name: notify\nsteps:\n  - id: tell\n    uses: notify.webhook\n    with:\n      url: https://hooks.example.com/x\n      message: hi\n";
    assert!(problems(literal).is_empty(), "{:?}", problems(literal));
}
