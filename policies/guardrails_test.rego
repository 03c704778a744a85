# Golden tests of the default guardrails; `riposte policy test` runs them (and .ci/run runs
# that). Each test pins the configuration it depends on, so a deployment's [guardrails] values
# cannot make them pass or fail.
package riposte.guardrails_test

import rego.v1

import data.riposte.guardrails

config := {"break_glass": [breakglass.id], "max_principals_per_hour": 10}

alex := {
	"id": "a1e7d1c2-5b3f-4c8e-9d21-000000000001", "upn": "alex.wilber@contoso.com",
	"user_type": "Member", "on_premises_sync_enabled": false, "account_enabled": true,
	"roles": [], "groups": [],
}

grady := {
	"id": "a1e7d1c2-5b3f-4c8e-9d21-000000000005", "upn": "grady.archie@contoso.com",
	"user_type": "Member", "on_premises_sync_enabled": false, "account_enabled": true,
	"roles": [{"display_name": "Global Administrator", "role_template_id": "62e90394-69f5-4237-9190-012177145e10"}],
	"groups": [],
}

breakglass := {
	"id": "a1e7d1c2-5b3f-4c8e-9d21-000000000006", "upn": "breakglass01@contoso.onmicrosoft.com",
	"user_type": "Member", "on_premises_sync_enabled": false, "account_enabled": true,
	"roles": [{"display_name": "Global Administrator", "role_template_id": "62e90394-69f5-4237-9190-012177145e10"}],
	"groups": [],
}

vm_id := "/subscriptions/b1c2d3e4-0000-4a5b-8c6d-000000000001/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01"

protected_vm := {"id": vm_id, "type": "Microsoft.Compute/virtualMachines", "tags": {"riposte:protected": "true"}}

plain_vm := {"id": vm_id, "type": "Microsoft.Compute/virtualMachines", "tags": {}}

# A step acting on a user, as the planner builds it.
user_step(action, effect, user, contained, stage, mode) := {
	"action": {"name": action, "effect": effect},
	"params": {"user": user.id},
	"target": {"principal_type": "user", "user": user, "resource": null, "resources": []},
	"alert": {"id": "51234", "source": "lacework", "kind": "first_access"},
	"playbook": {"name": "first-access-containment", "version": "1.0.0", "stage": stage},
	"mode": mode,
	"counters": {"principals_contained_last_hour": contained, "actions_last_hour": {}},
}

disable(user) := user_step("entra.disable_user", "mutate", user, 0, "live", "dry-run")

# A step acting on a resource.
resource_step(action, resource) := {
	"action": {"name": action, "effect": "mutate"},
	"params": {"resource": resource.id},
	"target": {"principal_type": "user", "user": alex, "resource": resource, "resources": [resource]},
	"alert": {"id": "51234"},
	"playbook": {"name": "first-access-containment", "version": "1.0.0", "stage": "live"},
	"mode": "dry-run",
	"counters": {"principals_contained_last_hour": 0, "actions_last_hour": {}},
}

decide(doc) := d if {
	d := guardrails.decision with input as doc with data.riposte.config as config
}

test_ordinary_user_allowed if {
	decide(disable(alex)).decision == "allow"
}

test_break_glass_denied if {
	d := decide(disable(breakglass))
	d.decision == "deny"
	"breakglass01@contoso.onmicrosoft.com is a break-glass account: riposte never acts on it" in d.reasons
}

test_break_glass_denied_for_every_mutating_action if {
	every action in ["entra.disable_user", "entra.revoke_sessions", "entra.force_password_reset", "entra.require_mfa", "arm.remove_role_assignments"] {
		decide(user_step(action, "mutate", breakglass, 0, "live", "enforce")).decision == "deny"
	}
}

test_break_glass_denied_even_when_the_user_could_not_be_looked_up if {
	doc := object.union(disable(breakglass), {"target": {"user": null}})
	decide(doc) == {"decision": "deny", "reasons": ["a1e7d1c2-5b3f-4c8e-9d21-000000000006 is a break-glass account: riposte never acts on it"]}
}

test_break_glass_matched_by_upn_case_insensitively if {
	cfg := {"break_glass": ["BreakGlass01@contoso.onmicrosoft.com"], "max_principals_per_hour": 10}
	d := guardrails.decision with input as disable(breakglass) with data.riposte.config as cfg
	d.decision == "deny"
}

test_global_admin_needs_approval if {
	d := decide(disable(grady))
	d == {"decision": "require_approval", "reasons": ["grady.archie@contoso.com holds Global Administrator: approval required"]}
}

test_every_privileged_role_needs_approval if {
	every template_id, name in data.riposte.privileged_roles {
		holder := object.union(alex, {"roles": [{"display_name": name, "role_template_id": template_id}]})
		decide(disable(holder)).decision == "require_approval"
	}
}

test_unprivileged_role_allowed if {
	reader := object.union(alex, {"roles": [{"display_name": "Directory Readers", "role_template_id": "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"}]})
	decide(disable(reader)).decision == "allow"
}

test_deny_wins_over_approval_and_keeps_every_reason if {
	d := decide(disable(breakglass))
	d.decision == "deny"
	count(d.reasons) == 2
	"breakglass01@contoso.onmicrosoft.com holds Global Administrator: approval required" in d.reasons
}

test_service_principal_target_denied if {
	doc := object.union(disable(alex), {"target": {"principal_type": "service_principal", "user": null}})
	d := decide(doc)
	d == {"decision": "deny", "reasons": ["the target is a service_principal: entra.disable_user acts on users only"]}
}

test_managed_identity_target_denied if {
	doc := object.union(disable(alex), {"target": {"principal_type": "managed_identity"}})
	decide(doc).decision == "deny"
}

test_tenth_disable_allowed if {
	decide(user_step("entra.disable_user", "mutate", alex, 9, "live", "enforce")).decision == "allow"
}

test_eleventh_disable_needs_approval if {
	d := decide(user_step("entra.disable_user", "mutate", alex, 10, "live", "enforce"))
	d.decision == "require_approval"
	d.reasons == ["10 principals already contained in this tenant in the last hour (limit 10): approval required to disable alex.wilber@contoso.com"]
}

test_cap_follows_configuration if {
	doc := user_step("entra.disable_user", "mutate", alex, 3, "live", "enforce")
	d := guardrails.decision with input as doc with data.riposte.config as {"break_glass": [], "max_principals_per_hour": 3}
	d.decision == "require_approval"
}

test_cap_applies_to_disables_only if {
	decide(user_step("entra.revoke_sessions", "mutate", alex, 50, "live", "enforce")).decision == "allow"
}

test_protected_resource_lock_denied if {
	d := decide(resource_step("arm.lock_resource", protected_vm))
	d == {"decision": "deny", "reasons": ["vm-web-01 is tagged riposte:protected: arm.lock_resource would modify it"]}
}

test_protected_resource_role_removal_denied if {
	decide(resource_step("arm.remove_role_assignments", protected_vm)).decision == "deny"
}

test_protected_resource_any_other_arm_change_denied if {
	decide(resource_step("arm.deallocate_vm", protected_vm)).decision == "deny"
}

test_protected_resource_in_a_for_each_step_denied if {
	doc := object.union(resource_step("arm.lock_resource", plain_vm), {"target": {"resource": null, "resources": [plain_vm, protected_vm]}})
	decide(doc).decision == "deny"
}

test_protected_resource_snapshot_allowed if {
	decide(resource_step("arm.snapshot", protected_vm)).decision == "allow"
}

test_unprotected_resource_lock_allowed if {
	decide(resource_step("arm.lock_resource", plain_vm)).decision == "allow"
}

test_protected_tag_set_to_false_does_not_protect if {
	vm := object.union(protected_vm, {"tags": {"riposte:protected": "false"}})
	decide(resource_step("arm.lock_resource", vm)).decision == "allow"
}

test_trial_stage_denied_in_enforce if {
	d := decide(user_step("entra.disable_user", "mutate", alex, 0, "trial", "enforce"))
	d == {"decision": "deny", "reasons": ["trial stage: plan only"]}
}

test_trial_stage_plans_in_dry_run if {
	decide(user_step("entra.disable_user", "mutate", alex, 0, "trial", "dry-run")).decision == "allow"
}

test_evidence_allowed if {
	d := decide(user_step("evidence.activity_log", "evidence", breakglass, 50, "trial", "enforce"))
	d.decision == "allow"
}

test_read_allowed if {
	decide(user_step("entra.get_user", "read", breakglass, 0, "live", "enforce")).decision == "allow"
}

# A service principal as the planner reads it for `arm.remove_role_assignments`.
pipeline_sp := {
	"id": "7a1b2c3d-0000-4e5f-8a9b-000000000a01", "app_id": "7a1b2c3d-0000-4e5f-8a9b-000000000a02",
	"display_name": "deploy-pipeline", "service_principal_type": "Application", "roles": [],
}

remove_roles_of(sp) := {
	"action": {"name": "arm.remove_role_assignments", "effect": "mutate"},
	"params": {"resource": vm_id, "principal": sp.id},
	"target": {"principal_type": "service_principal", "user": null, "service_principal": sp, "resource": plain_vm, "resources": [plain_vm]},
	"alert": {"id": "51234"},
	"playbook": {"name": "first-access-containment", "version": "1.0.0", "stage": "live"},
	"mode": "enforce",
	"counters": {"principals_contained_last_hour": 0, "actions_last_hour": {}},
}

test_ordinary_service_principal_loses_its_roles if {
	decide(remove_roles_of(pipeline_sp)).decision == "allow"
}

test_break_glass_service_principal_named_by_app_id_denied if {
	cfg := {"break_glass": ["7A1B2C3D-0000-4E5F-8A9B-000000000A02"], "max_principals_per_hour": 10}
	d := guardrails.decision with input as remove_roles_of(pipeline_sp) with data.riposte.config as cfg
	d == {"decision": "deny", "reasons": ["service principal deploy-pipeline is a break-glass account: riposte never acts on it"]}
}

test_privileged_service_principal_needs_approval if {
	sp := object.union(pipeline_sp, {"roles": [{"display_name": "Global Administrator", "role_template_id": "62e90394-69f5-4237-9190-012177145e10"}]})
	d := decide(remove_roles_of(sp))
	d == {"decision": "require_approval", "reasons": ["service principal deploy-pipeline holds Global Administrator: approval required"]}
}

test_privileged_user_losing_role_assignments_needs_approval if {
	decide(user_step("arm.remove_role_assignments", "mutate", grady, 0, "live", "enforce")).decision == "require_approval"
}

test_notification_allowed_by_default if {
	doc := {
		"action": {"name": "notify.webhook", "effect": "notify"},
		"params": {"message": "contained"},
		"target": {"principal_type": "user", "user": null, "resource": null, "resources": [], "destination": "https://contoso.webhook.office.com"},
		"alert": {"id": "51234"},
		"playbook": {"name": "first-access-containment", "version": "1.0.0", "stage": "live"},
		"mode": "enforce",
		"counters": {"principals_contained_last_hour": 0, "actions_last_hour": {}},
	}
	decide(doc) == {"decision": "allow", "reasons": ["no guardrail restricts this step"]}
}
