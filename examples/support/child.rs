//! The examples' tests over real HTTP: the example's test binary runs its server in a child
//! process (itself, with [`CHILD_DIR`] set to the store's directory), talks to it with a
//! small HTTP/1.1 client keeping cookies, and can kill it with SIGKILL and start it again on
//! the same directory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The variable naming the data directory of the child's server.
pub const CHILD_DIR: &str = "EXAMPLE_CHILD_DIR";

/// A directory of its own under the system's temporary directory (not created).
pub fn temp_dir(what: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let example = exe
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("example");
    std::env::temp_dir().join(format!(
        "sessile-{example}-{what}-{}",
        sessile::id::generate().expect("a random id")
    ))
}

/// The example's server, running in a child process.
pub struct Server {
    child: Child,
    /// `host:port` it listens on.
    pub addr: String,
}

impl Server {
    /// Runs test `child_test` of this binary as the server on `dir`, and waits until it
    /// prints `listening on ADDR`.
    pub fn start(child_test: &str, dir: &Path) -> Self {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([child_test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the server");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let addr = loop {
            let mut line = String::new();
            if out.read_line(&mut line).expect("child stdout") == 0 {
                panic!("the server exited before listening: {:?}", child.wait());
            }
            // The child's harness may have printed `test NAME ... ` on the same line.
            if let Some((_, rest)) = line.trim().split_once("listening on ") {
                break rest.trim_start_matches("http://").to_owned();
            }
        };
        // Keep reading what it prints, so it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Server { child, addr }
    }

    /// Sends SIGTERM and waits for the server to exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(kill.expect("kill").success());
        self.child.wait().expect("wait")
    }

    /// `kill -9`: no shutdown of any kind runs in the server.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub set_cookies: Vec<String>,
    pub location: Option<String>,
    pub body: String,
}

/// The cookies a browser would send back (name and value; attributes ignored).
#[derive(Debug, Default, Clone)]
pub struct Jar(Vec<(String, String)>);

impl Jar {
    /// A jar holding one cookie.
    pub fn with(name: &str, value: &str) -> Self {
        Jar(vec![(name.to_owned(), value.to_owned())])
    }

    /// The value of cookie `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Takes in the response's `Set-Cookie`s; a cookie set to expire is removed.
    fn update(&mut self, resp: &Response) {
        for c in &resp.set_cookies {
            let pair = c.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let expired = c.to_ascii_lowercase().contains("max-age=0");
            self.0.retain(|(n, _)| n != name.trim());
            if !expired {
                self.0
                    .push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
    }

    fn header(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
        pairs.join("; ")
    }

    /// `GET path`, cookies sent and kept.
    pub fn get_page(&mut self, addr: &str, path: &str) -> Response {
        self.send(addr, "GET", path, None)
    }

    /// `POST path` with an `application/x-www-form-urlencoded` body.
    pub fn post_form(&mut self, addr: &str, path: &str, form: &str) -> Response {
        self.send(addr, "POST", path, Some(form))
    }

    fn send(&mut self, addr: &str, method: &str, path: &str, form: Option<&str>) -> Response {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if !self.0.is_empty() {
            req.push_str(&format!("Cookie: {}\r\n", self.header()));
        }
        let body = form.unwrap_or_default();
        if form.is_some() {
            req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let mut conn = TcpStream::connect(addr).expect("connect");
        conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .expect("timeout");
        conn.write_all(req.as_bytes()).expect("send");
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).expect("response");
        let raw = String::from_utf8(raw).expect("utf-8 response");
        let (head, body) = raw.split_once("\r\n\r\n").expect("a header block");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let (mut set_cookies, mut location) = (Vec::new(), None);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "set-cookie" => set_cookies.push(value.trim().to_owned()),
                "location" => location = Some(value.trim().to_owned()),
                "transfer-encoding" => panic!("chunked bodies are not read: {head}"),
                _ => {}
            }
        }
        let resp = Response {
            status,
            set_cookies,
            location,
            body: body.to_owned(),
        };
        self.update(&resp);
        resp
    }
}

/// The login examples' scenario, over HTTP against the example's `tests::server_child` on a
/// fresh directory, for an app whose session cookie is `cookie` and whose routes are `/`
/// (counts visits), `/login` (form, user `ferris`, password `hunter42`), `/protected` and
/// `/logout`: the protected route refuses a visitor and a wrong password; login gives the
/// session a new id and keeps its data; the protected route then answers, and still does
/// after the server is killed with SIGKILL and started again on the same directory; the
/// cookie from before the login is no login; logout ends the login, and its cookie is no
/// login either.
pub fn login_survives_kill_9(cookie: &str) {
    let dir = temp_dir("kill");
    let mut browser = Jar::default();
    let server = Server::start("tests::server_child", &dir);
    let addr = server.addr.clone();

    let r = browser.get_page(&addr, "/");
    assert_eq!(r.body, "not logged in, visit 1");
    let before = browser.get(cookie).expect("a session").to_owned();
    assert_eq!(browser.get_page(&addr, "/protected").status, 401);
    let r = browser.post_form(&addr, "/login", "username=ferris&password=wrong");
    assert_eq!(r.status, 401);

    let r = browser.post_form(&addr, "/login", "username=ferris&password=hunter42");
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/protected")));
    let after = browser.get(cookie).expect("a session").to_owned();
    assert_ne!(after, before, "login gives the session a new id");
    let r = browser.get_page(&addr, "/protected");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "protected page of ferris")
    );
    let r = browser.get_page(&addr, "/");
    assert_eq!(r.body, "hello ferris, visit 2", "the session kept its data");
    let r = Jar::with(cookie, &before).get_page(&addr, "/protected");
    assert_eq!(
        r.status, 401,
        "the session from before the login is no login"
    );

    server.kill9();
    let server = Server::start("tests::server_child", &dir);
    let addr = server.addr.clone();
    let r = browser.get_page(&addr, "/protected");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "protected page of ferris"),
        "the login survives kill -9"
    );

    let r = browser.get_page(&addr, "/logout");
    assert_eq!(r.body, "logged out");
    assert_eq!(browser.get_page(&addr, "/protected").status, 401);
    let r = Jar::with(cookie, &after).get_page(&addr, "/protected");
    assert_eq!(r.status, 401, "the logged-out session is no login");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
