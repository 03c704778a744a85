# riposte's default guardrails. riposte asks `data.riposte.guardrails.decision` about every
# step that changes the tenant, when it plans and again just before the request is sent.
#
# Rules add human reasons to `deny` or `approval`; `decision` combines them: deny wins over
# require_approval, which wins over allow, and every reason that fired is kept. Add a rule in
# another file of this package and it takes part in the same decision.
#
# Tunable values are data: `data.riposte.config` ([guardrails] in riposte.toml, over
# data.json) and `data.riposte.privileged_roles` (data.json).
package riposte.guardrails

import rego.v1

config := data.riposte.config

# ---------------------------------------------------------------------------------------------
# The decision

# Reads and evidence collection change nothing: always allowed, whoever the target is.
read_only if input.action.effect in {"read", "evidence"}

read_only if startswith(input.action.name, "evidence.")

decision := {"decision": "allow", "reasons": [sprintf("%s only reads: always allowed", [input.action.name])]} if {
	read_only
}

decision := {"decision": "deny", "reasons": array.concat(sort(deny), sort(approval))} if {
	not read_only
	count(deny) > 0
}

decision := {"decision": "require_approval", "reasons": sort(approval)} if {
	not read_only
	count(deny) == 0
	count(approval) > 0
}

decision := {"decision": "allow", "reasons": ["no guardrail restricts this step"]} if {
	not read_only
	count(deny) == 0
	count(approval) == 0
}

# ---------------------------------------------------------------------------------------------
# Facts, named once

user := object.get(input, ["target", "user"], null)

# How a reason names the target user: the UPN when known, else the object id.
user_name := user.upn if {
	is_string(user.upn)
} else := user.id if {
	is_string(user.id)
} else := "the target user"

# Every way the step names a principal — looked-up facts and raw parameters — so a target the
# plan could not look up (no credentials) is still checked.
principal_refs contains lower(user.id) if is_string(user.id)

principal_refs contains lower(user.upn) if is_string(user.upn)

# A service principal the planner read for a step's `principal`: break-glass entries may name
# it by object id or by application (client) id.
service_principal := object.get(input, ["target", "service_principal"], null)

principal_refs contains lower(service_principal.id) if is_string(service_principal.id)

principal_refs contains lower(service_principal.app_id) if is_string(service_principal.app_id)

principal_refs contains lower(v) if {
	some p in param_items
	some key in {"user", "principal", "principal_id", "user_id"}
	v := p[key]
	is_string(v)
}

# A `for_each` step has a list of parameter objects; a single step one object.
param_items := input.params if {
	is_array(input.params)
} else := [input.params] if {
	is_object(input.params)
} else := []

mutating if input.action.effect == "mutate"

user_action if startswith(input.action.name, "entra.")

resources contains r if some r in object.get(input, ["target", "resources"], [])

resources contains r if {
	r := input.target.resource
	is_object(r)
}

resource_name(r) := name if {
	parts := split(r.id, "/")
	name := parts[count(parts) - 1]
	name != ""
} else := r.id

protected(r) if {
	some key, value in object.get(r, "tags", {})
	lower(key) == data.riposte.protected_tag
	lower(sprintf("%v", [value])) != "false"
}

# ---------------------------------------------------------------------------------------------
# Break-glass accounts are never touched.

deny contains sprintf("%s is a break-glass account: riposte never acts on it", [principal_name(ref)]) if {
	some ref in principal_refs
	some bg in config.break_glass
	lower(bg) == ref
}

# The UPN when the matched reference is the looked-up user, the display name when it is the
# looked-up service principal, else the reference itself.
principal_name(ref) := user.upn if {
	is_string(user.upn)
	ref in {lower(user.upn), lower(object.get(user, "id", ""))}
} else := sprintf("service principal %s", [service_principal.display_name]) if {
	is_object(service_principal)
	is_string(service_principal.display_name)
	ref in {lower(object.get(service_principal, "id", "")), lower(object.get(service_principal, "app_id", ""))}
} else := ref

# ---------------------------------------------------------------------------------------------
# Holders of privileged directory roles: a human decides.

# Actions that take something away from a principal: every entra.* action, and removing a
# principal's Azure role assignments.
principal_action if user_action

principal_action if input.action.name == "arm.remove_role_assignments"

approval contains sprintf("%s holds %s: approval required", [user_name, role_name]) if {
	principal_action
	mutating
	some role in object.get(input, ["target", "user", "roles"], [])
	role_name := data.riposte.privileged_roles[role.role_template_id]
}

approval contains sprintf("service principal %s holds %s: approval required", [sp_name, role_name]) if {
	principal_action
	mutating
	some role in object.get(input, ["target", "service_principal", "roles"], [])
	role_name := data.riposte.privileged_roles[role.role_template_id]
	sp_name := object.get(service_principal, "display_name", service_principal.id)
}

# ---------------------------------------------------------------------------------------------
# User actions never reach service principals or managed identities.

deny contains sprintf("the target is a %s: %s acts on users only", [kind, input.action.name]) if {
	user_action
	kind := input.target.principal_type
	kind in {"service_principal", "managed_identity"}
}

# ---------------------------------------------------------------------------------------------
# Blast radius: past the hourly cap, every further disable needs a human.

approval contains sprintf(
	"%d principals already contained in this tenant in the last hour (limit %d): approval required to disable %s",
	[contained, config.max_principals_per_hour, user_name],
) if {
	input.action.name == "entra.disable_user"
	contained := object.get(input, ["counters", "principals_contained_last_hour"], 0)
	contained >= config.max_principals_per_hour
}

# ---------------------------------------------------------------------------------------------
# Resources tagged riposte:protected are never modified or locked; snapshots of their disks
# read them and write a new resource, so they are still taken.

deny contains sprintf("%s is tagged %s: %s would modify it", [resource_name(r), data.riposte.protected_tag, input.action.name]) if {
	startswith(input.action.name, "arm.")
	mutating
	not input.action.name in data.riposte.non_modifying_arm_actions
	some r in resources
	protected(r)
}

# ---------------------------------------------------------------------------------------------
# A playbook on trial only plans.

deny contains "trial stage: plan only" if {
	input.playbook.stage == "trial"
	input.mode == "enforce"
}
