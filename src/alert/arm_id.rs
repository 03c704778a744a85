//! ARM resource ids: `/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{type}/{name}…]`.

/// A parsed ARM id. Segment names compare case-insensitively, as ARM does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmId {
    pub subscription_id: Option<String>,
    pub resource_group: Option<String>,
    /// `Microsoft.Compute`
    pub namespace: Option<String>,
    /// `[("virtualMachines", "vm1"), ("extensions", "x")]`
    pub types: Vec<(String, String)>,
}

impl ArmId {
    pub fn parse(id: &str) -> Option<ArmId> {
        // Whitespace around an id is not trimmed away here: the id is used as given to build
        // the request, so a padded one would address `/%20/subscriptions/…` while the policy
        // judged the trimmed one. Callers that keep a canonical form may trim first.
        let trimmed = id;
        // Nor are extra slashes: the id is one `/` and its segments, so what the policy sees
        // and what a body quotes verbatim (`sourceResourceId`) are the same string.
        if !trimmed.starts_with('/')
            || trimmed.starts_with("//")
            || trimmed.ends_with('/')
            || trimmed.trim() != trimmed
        {
            return None;
        }
        let segs: Vec<&str> = trimmed.trim_matches('/').split('/').collect();
        // Strict at the edge: a segment that a URL parser, a proxy or ARM would read as
        // something else (`..` climbs to another resource group, `%2e%2e` decodes to it, `?`
        // and `#` end the path) makes the id not an id at all.
        if trimmed.ends_with("//") || segs.iter().any(|s| !is_plain_segment(s)) {
            return None;
        }
        let mut arm = ArmId {
            subscription_id: None,
            resource_group: None,
            namespace: None,
            types: Vec::new(),
        };
        let mut i = 0;
        while i < segs.len() {
            let key = segs[i];
            if key.eq_ignore_ascii_case("subscriptions") && arm.subscription_id.is_none() {
                arm.subscription_id = Some(segs.get(i + 1)?.to_string());
                i += 2;
            } else if key.eq_ignore_ascii_case("resourceGroups") && arm.resource_group.is_none() {
                arm.resource_group = Some(segs.get(i + 1)?.to_string());
                i += 2;
            } else if key.eq_ignore_ascii_case("providers") && arm.namespace.is_none() {
                arm.namespace = Some(segs.get(i + 1)?.to_string());
                i += 2;
                while i + 1 < segs.len() {
                    arm.types
                        .push((segs[i].to_string(), segs[i + 1].to_string()));
                    i += 2;
                }
                if i < segs.len() {
                    // A trailing type without a name is a collection, not a resource.
                    return None;
                }
            } else {
                return None;
            }
        }
        arm.subscription_id.as_ref()?;
        if segs.iter().any(|s| s.is_empty()) {
            return None;
        }
        Some(arm)
    }

    /// `Microsoft.Compute/virtualMachines`, or `Microsoft.Resources/resourceGroups` for a group.
    pub fn resource_type(&self) -> Option<String> {
        match (&self.namespace, self.types.is_empty()) {
            (Some(ns), false) => Some(format!(
                "{ns}/{}",
                self.types
                    .iter()
                    .map(|(t, _)| t.as_str())
                    .collect::<Vec<_>>()
                    .join("/")
            )),
            (None, _) if self.resource_group.is_some() => {
                Some("Microsoft.Resources/resourceGroups".into())
            }
            (None, _) => Some("Microsoft.Resources/subscriptions".into()),
            _ => None,
        }
    }

    pub fn name(&self) -> Option<String> {
        match self.types.last() {
            Some((_, name)) => Some(name.clone()),
            None => self
                .resource_group
                .clone()
                .or_else(|| self.subscription_id.clone()),
        }
    }

    /// The id with canonical segment spelling (`resourceGroups`, `providers`); names keep
    /// their case, since that is what ARM returns and what tags and snapshots should show.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        if let Some(s) = &self.subscription_id {
            out.push_str("/subscriptions/");
            out.push_str(s);
        }
        if let Some(rg) = &self.resource_group {
            out.push_str("/resourceGroups/");
            out.push_str(rg);
        }
        if let Some(ns) = &self.namespace {
            out.push_str("/providers/");
            out.push_str(ns);
            for (t, n) in &self.types {
                out.push('/');
                out.push_str(t);
                out.push('/');
                out.push_str(n);
            }
        }
        out
    }

    /// Whether this is a `Microsoft.Compute/<kind>` resource, compared case-insensitively.
    pub fn is_type(&self, full_type: &str) -> bool {
        self.resource_type()
            .is_some_and(|t| t.eq_ignore_ascii_case(full_type))
    }
}

/// A path segment that means only itself: not empty, not `.` or `..`, and free of the
/// characters that end, escape or re-root a URL path.
fn is_plain_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s
            .chars()
            .any(|c| matches!(c, '?' | '#' | '%' | '\\') || c.is_control() || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_padded_with_whitespace_is_not_an_id() {
        let id = "/subscriptions/s/resourceGroups/rg";
        assert!(ArmId::parse(id).is_some());
        for padded in [
            format!(" {id}"),
            format!("{id}\n"),
            format!("\t{id} "),
            format!("{id}/"),
            format!("/{id}"),
        ] {
            assert!(ArmId::parse(&padded).is_none(), "{padded:?}");
        }
    }

    #[test]
    fn parses_vm_id_case_insensitively() {
        let id = ArmId::parse(
            "/subscriptions/0000/resourcegroups/rg-prod/providers/microsoft.compute/virtualmachines/vm-web-01",
        )
        .unwrap();
        assert_eq!(id.subscription_id.as_deref(), Some("0000"));
        assert_eq!(id.resource_group.as_deref(), Some("rg-prod"));
        assert!(id.is_type("Microsoft.Compute/virtualMachines"));
        assert_eq!(id.name().as_deref(), Some("vm-web-01"));
        assert_eq!(
            id.canonical(),
            "/subscriptions/0000/resourceGroups/rg-prod/providers/microsoft.compute/virtualmachines/vm-web-01"
        );
    }

    #[test]
    fn scopes_and_garbage() {
        let rg = ArmId::parse("/subscriptions/s/resourceGroups/rg").unwrap();
        assert_eq!(
            rg.resource_type().as_deref(),
            Some("Microsoft.Resources/resourceGroups")
        );
        assert!(ArmId::parse("not-an-id").is_none());
        assert!(ArmId::parse("/subscriptions/s/providers/Microsoft.Compute/disks").is_none());
        assert!(ArmId::parse("/foo/bar").is_none());
    }

    #[test]
    fn ids_that_would_change_the_target_are_not_ids() {
        let ok =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1";
        assert!(ArmId::parse(ok).is_some());
        for bad in [
            "/subscriptions/s/resourceGroups/rg/../other/providers/Microsoft.Compute/virtualMachines/vm1",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/../../../rg2/providers/Microsoft.Compute/virtualMachines/vm9",
            "/subscriptions/s/resourceGroups/./providers/Microsoft.Compute/virtualMachines/vm1",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/%2e%2e",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1?api-version=1",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1#x",
            "/subscriptions/s/resourceGroups/rg//providers/Microsoft.Compute/virtualMachines/vm1",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm 1",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1\\..",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm\n1",
        ] {
            assert!(ArmId::parse(bad).is_none(), "{bad:?} parsed");
        }
    }
}
