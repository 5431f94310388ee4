//! `[server]` limits: the connection limit and the idle timeout.

use std::time::Duration;

use phantomdb_server::Config;

use crate::support::{code, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn the_connection_limit_refuses_extra_clients() {
    let config = Config::parse("[server]\nmax_connections = 2\n").expect("config");
    let server = TestServer::start_with("", config);
    let a = server.admin().await;
    let b = server.admin().await;
    let e = server
        .connect(crate::support::ADMIN, crate::support::ADMIN_PASSWORD)
        .await
        .expect_err("third connection");
    assert_eq!(code(&e), "53300");
    drop(a);
    // The slot is free again once the first client has gone.
    let mut tries = 0;
    let c = loop {
        match server
            .connect(crate::support::ADMIN, crate::support::ADMIN_PASSWORD)
            .await
        {
            Ok(c) => break c,
            Err(e) if tries < 50 && code(&e) == "53300" => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("slot not released: {e}"),
        }
    };
    c.batch_execute("SELECT 1").await.expect("served");
    b.batch_execute("SELECT 1").await.expect("served");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_are_closed() {
    let config = Config::parse("[server]\nidle_timeout = \"1s\"\n").expect("config");
    let server = TestServer::start_with("", config);
    let idle = server.admin().await;
    let busy = server.admin().await;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        busy.batch_execute("SELECT 1")
            .await
            .expect("an active client stays");
    }
    assert!(
        idle.batch_execute("SELECT 1").await.is_err(),
        "the idle client was disconnected"
    );
    busy.batch_execute("SELECT 1").await.expect("still served");
}
