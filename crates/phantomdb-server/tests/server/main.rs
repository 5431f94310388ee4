//! The server against real clients on loopback: psql, tokio-postgres and psycopg.

mod auth_rules;
mod bad_input;
mod ldap;
mod limits;
mod logins;
mod logs;
mod providers;
mod psql;
mod python;
mod returning;
mod slapd;
mod stress;
mod support;
mod wire;
