//! The query processor: at stage `analyzed` it puts each protected table's `using`
//! predicate in a filter directly above every scan of the table (wherever the scan is:
//! joins, subqueries, inlined views, CTEs, the input of UPDATE and DELETE), and adds its
//! `check` to the checks of every INSERT into and UPDATE of it (the host refuses a row
//! failing one with SQLSTATE 42501). It fails the statement rather than let a scan go
//! unfiltered.

use std::sync::RwLock;

use phantomdb_plugin_sdk::plan::{Expr, Plan, PlanNode};
use phantomdb_plugin_sdk::query::{FailureMode, Hooks, QueryProcessor, Session, Stage};

use crate::config::{Config, ENFORCE_SETTING};

/// The processor, shared by every session; its configuration is set by `initialize`.
#[derive(Default)]
pub struct RowLevelSecurity {
    config: RwLock<Config>,
}

impl RowLevelSecurity {
    /// Replaces the configuration.
    pub fn configure(&self, config: Config) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    fn config(&self) -> Config {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Whether the policies apply to this session.
fn enforced(config: &Config, session: &Session) -> bool {
    if !session.superuser || config.enforce_for_owner {
        return true;
    }
    session.settings.get(ENFORCE_SETTING).is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "on" | "true" | "1" | "yes"
        )
    })
}

impl QueryProcessor for RowLevelSecurity {
    fn name(&self) -> &str {
        "row_level_security"
    }

    fn description(&self) -> &str {
        "per-table row filters and checks on new rows, from the plugin's configuration"
    }

    fn hooks(&self) -> Hooks {
        Hooks {
            rewrite_analyzed: true,
            ..Hooks::default()
        }
    }

    fn order(&self) -> i32 {
        // Before optimizers, so what they estimate includes the policies.
        -100
    }

    fn failure_mode(&self) -> FailureMode {
        FailureMode::Fail
    }

    fn rewrite(&self, stage: Stage, plan: Plan, session: &Session) -> Result<Option<Plan>, String> {
        if stage != Stage::Analyzed {
            return Ok(None);
        }
        let config = self.config();
        if config.policies.is_empty() || !enforced(&config, session) {
            return Ok(None);
        }
        let mut changed = false;
        let root = protect(plan.root, &config, &mut changed)?;
        Ok(changed.then_some(Plan {
            version: plan.version,
            root,
        }))
    }
}

/// `root` with every protected scan filtered and every protected write checked.
pub fn protect(root: PlanNode, config: &Config, changed: &mut bool) -> Result<PlanNode, String> {
    root.transform_up(&mut |node| {
        Ok(match node {
            PlanNode::Scan {
                ref table,
                ref fetch,
                ..
            } => match config.policy(table) {
                None => node,
                Some(_) if fetch.is_some() => {
                    // A limit applied inside the scan would count hidden rows.
                    return Err(format!(
                        "cannot apply the row-level security policy of table {table}: \
                         its scan has a limit pushed into it"
                    ));
                }
                Some(policy) => {
                    *changed = true;
                    PlanNode::Filter {
                        predicate: Expr::sql(policy.using.clone()),
                        input: Box::new(node),
                        schema: Vec::new(),
                    }
                }
            },
            PlanNode::Insert {
                table,
                mut checks,
                input,
            } => {
                if let Some(policy) = config.policy(&table) {
                    *changed = true;
                    checks.push(Expr::sql(policy.check.clone()));
                }
                PlanNode::Insert {
                    table,
                    checks,
                    input,
                }
            }
            PlanNode::Update {
                table,
                assignments,
                mut checks,
                input,
            } => {
                if let Some(policy) = config.policy(&table) {
                    *changed = true;
                    checks.push(Expr::sql(policy.check.clone()));
                }
                PlanNode::Update {
                    table,
                    assignments,
                    checks,
                    input,
                }
            }
            other => other,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn scan(table: &str) -> PlanNode {
        PlanNode::Scan {
            id: Some(0),
            table: table.into(),
            engine: "redb".into(),
            projection: None,
            filters: Vec::new(),
            fetch: None,
            statistics: None,
            schema: Vec::new(),
        }
    }

    fn config() -> Config {
        Config::parse(r#"{"policies": {"orders": {"using": "t = 1", "check": "t = 2"}}}"#).unwrap()
    }

    fn session(superuser: bool, enforce: Option<&str>) -> Session {
        let mut settings = BTreeMap::new();
        if let Some(v) = enforce {
            settings.insert(ENFORCE_SETTING.to_string(), v.to_string());
        }
        Session {
            user: "u".into(),
            database: "d".into(),
            superuser,
            settings,
        }
    }

    #[test]
    fn filters_scans_inside_subqueries_and_checks_writes() {
        let plan = PlanNode::Insert {
            table: "orders".into(),
            checks: Vec::new(),
            input: Box::new(PlanNode::Filter {
                predicate: Expr::Exists {
                    plan: Box::new(scan("public.orders")),
                    negated: false,
                },
                input: Box::new(scan("other")),
                schema: Vec::new(),
            }),
        };
        let mut changed = false;
        let out = protect(plan, &config(), &mut changed).unwrap();
        assert!(changed);
        let PlanNode::Insert { checks, input, .. } = out else {
            panic!("not an insert")
        };
        assert_eq!(checks, vec![Expr::sql("t = 2")]);
        let PlanNode::Filter {
            predicate: Expr::Exists { plan, .. },
            input,
            ..
        } = *input
        else {
            panic!("filter lost")
        };
        assert!(
            matches!(*plan, PlanNode::Filter { predicate: Expr::Sql { ref sql }, .. } if sql == "t = 1")
        );
        assert_eq!(*input, scan("other"));
    }

    #[test]
    fn a_scan_with_a_pushed_limit_fails_closed() {
        let mut limited = scan("orders");
        if let PlanNode::Scan { fetch, .. } = &mut limited {
            *fetch = Some(1);
        }
        assert!(protect(limited, &config(), &mut false).is_err());
    }

    #[test]
    fn the_owner_is_exempt_unless_enforced() {
        let p = RowLevelSecurity::default();
        p.configure(config());
        let plan = Plan {
            version: 1,
            root: scan("orders"),
        };
        let rewrite = |s: &Session| p.rewrite(Stage::Analyzed, plan.clone(), s).unwrap();
        assert!(rewrite(&session(true, None)).is_none());
        assert!(rewrite(&session(true, Some("off"))).is_none());
        assert!(rewrite(&session(true, Some("on"))).is_some());
        assert!(rewrite(&session(false, None)).is_some());
        assert!(p
            .rewrite(Stage::Optimized, plan.clone(), &session(false, None))
            .unwrap()
            .is_none());
    }
}
