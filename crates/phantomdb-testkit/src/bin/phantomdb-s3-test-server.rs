//! `phantomdb-s3-test-server --root DIR [--addr 127.0.0.1:0] [--prefix tables]`
//!
//! Runs the s3s-fs test server from `phantomdb-testkit` until killed, printing its endpoint,
//! credentials and a ready `s3_storage` plugin configuration.

use std::path::PathBuf;

use phantomdb_testkit::S3TestServer;

fn usage() -> ! {
    eprintln!("usage: phantomdb-s3-test-server --root DIR [--addr HOST:PORT] [--prefix PREFIX]");
    std::process::exit(2)
}

fn main() {
    let mut root: Option<PathBuf> = None;
    let mut addr = "127.0.0.1:0".to_string();
    let mut prefix = "tables".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--root" => root = Some(args.next().unwrap_or_else(|| usage()).into()),
            "--addr" => addr = args.next().unwrap_or_else(|| usage()),
            "--prefix" => prefix = args.next().unwrap_or_else(|| usage()),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    let Some(root) = root else { usage() };
    let server = match S3TestServer::start_on(&root, &addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot start the S3 test server: {e}");
            std::process::exit(1);
        }
    };
    println!("endpoint: {}", server.endpoint);
    println!("bucket: {}", server.bucket);
    println!("access_key_id: {}", server.access_key);
    println!("secret_access_key: {}", server.secret_key);
    println!("region: {}", server.region);
    println!("s3_storage config: {}", server.config_json(&prefix));
    loop {
        std::thread::park();
    }
}
