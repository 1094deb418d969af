// A tiny Express app with express-session and connect-redis, for sessile's interop test
// (tests/redis_interop.rs) and the README's "many nodes" demo.
//
//   npm ci --prefix tests/interop
//   PORT=3002 REDIS_URL=redis://127.0.0.1:6379 SECRET='keyboard cat' node tests/interop/app.js
//
// Environment: PORT (0 picks a free port), REDIS_URL or REDIS_CLUSTER_URLS (a cluster's seed
// nodes, comma-separated: node-redis's createCluster, which connect-redis supports), SECRET (or SESSION_SECRET), PREFIX
// (default "sess:"), HOST (default 127.0.0.1). Prints "listening on http://HOST:PORT" once
// it accepts requests. Routes (GET, JSON bodies) mirror the conformance server's:
//   /views          counts views in req.session.views
//   /set/:k/:v      req.session[k] = v
//   /node-extras    stores fields sessile knows nothing about (nested objects, numbers)
//   /node-odd       stores what JavaScript writes and serde_json cannot decode: half a
//                   surrogate pair ('👍'.slice(0, 1)) and arrays nested 200 deep
//   /odd-intact     whether those fields are still exactly what /node-odd stored
//   /read           the session's fields (without the cookie)
//   /id             req.sessionID
//   /cookie         req.session.cookie
//   /logout         req.session.destroy()
//   /               a small page showing the session (for the demo)

"use strict";

const express = require("express");
const session = require("express-session");
const { RedisStore } = require("connect-redis");
const { createClient, createCluster } = require("redis");

const port = Number(process.env.PORT || 3002);
const host = process.env.HOST || "127.0.0.1";
const redisUrl = process.env.REDIS_URL || "redis://127.0.0.1:6379";
// A Redis Cluster instead: its seed nodes' URLs, comma-separated.
const clusterUrls = (process.env.REDIS_CLUSTER_URLS || "").split(",").filter(Boolean);
const secret = process.env.SECRET || process.env.SESSION_SECRET;
const prefix = process.env.PREFIX || "sess:";
if (!secret) {
  console.error("set SECRET (the secret the sessile servers sign with)");
  process.exit(2);
}

async function main() {
  const client = clusterUrls.length
    ? createCluster({ rootNodes: clusterUrls.map((url) => ({ url })) })
    : createClient({ url: redisUrl });
  client.on("error", (err) => console.error("redis:", err.message));
  await client.connect();

  const app = express();
  app.use(
    session({
      store: new RedisStore({ client, prefix }),
      secret,
      name: "connect.sid",
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: 24 * 3600 * 1000, sameSite: "lax" },
    }),
  );

  const fields = (req) => {
    const out = {};
    for (const [k, v] of Object.entries(req.session)) {
      if (k !== "cookie") out[k] = v;
    }
    return out;
  };

  app.get("/views", (req, res) => {
    req.session.views = (req.session.views || 0) + 1;
    res.json(req.session.views);
  });
  app.get("/set/:k/:v", (req, res) => {
    req.session[req.params.k] = req.params.v;
    res.json("ok");
  });
  app.get("/node-extras", (req, res) => {
    req.session.nodeOnly = {
      list: [1, 2.5, "three", null, true, { deep: [] }],
      nested: { a: { b: { c: "d" } } },
      big: 9007199254740991,
      small: 1e-7,
      text: 'é "quoted" \\ ✓',
    };
    res.json("ok");
  });
  const nested = (depth) => {
    let v = 1;
    for (let i = 0; i < depth; i++) v = [v];
    return v;
  };
  const depthOf = (v) => {
    let d = 0;
    while (Array.isArray(v) && v.length === 1) {
      v = v[0];
      d++;
    }
    return v === 1 ? d : -1;
  };
  app.get("/node-odd", (req, res) => {
    req.session.half = "👍".slice(0, 1);
    req.session.deep = nested(200);
    res.json("ok");
  });
  app.get("/odd-intact", (req, res) =>
    res.json({
      half: req.session.half === "\ud83d",
      deep: depthOf(req.session.deep),
    }),
  );
  app.get("/read", (req, res) => res.json(fields(req)));
  app.get("/id", (req, res) => res.json(req.sessionID));
  app.get("/cookie", (req, res) => res.json(req.session.cookie));
  app.get("/logout", (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.json("ok")));
  });
  app.get("/", (req, res) => {
    req.session.views = (req.session.views || 0) + 1;
    const user = req.session.user ? `logged in as ${req.session.user}` : "not logged in";
    res.type("html").send(
      `<!doctype html><title>Express beside sessile</title>` +
        `<h1>Express (Node ${process.version})</h1><p>${escape(user)}; ` +
        `${req.session.views} views in this session (shared with the sessile servers).</p>` +
        `<pre>${escape(JSON.stringify(fields(req), null, 2))}</pre>`,
    );
  });

  const server = app.listen(port, host, () => {
    const addr = server.address();
    console.log(`listening on http://${addr.address}:${addr.port}`);
  });
  const stop = () => {
    server.close();
    client.quit().catch(() => {}).finally(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

function escape(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
