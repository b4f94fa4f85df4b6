'use strict';
// nodemailer smtp-server instances for the interop tests.
//
// Environment:
//   SPOOL      folder where each accepted message is saved as <id>.eml (the exact un-stuffed
//              bytes received) and <id>.env (the envelope, one "key: value" per line)
//   TLS_CERT, TLS_KEY   PEM files of the server certificate (chain) and key
//   PORT_SMTP  plain SMTP with STARTTLS (AUTH only after STARTTLS)
//   PORT_SMTPS implicit TLS
//   PORT_LMTP  LMTP (no TLS)
//   SIZE       advertised and enforced SIZE limit
//   PIDFILE    written once every port listens
//
// Accounts: USER / PASS for PLAIN, LOGIN and CRAM-MD5; XOAUTH2 accepts USER with TOKEN.
// Recipients whose local part starts with "reject" get 550 at RCPT, "defer" 451 at RCPT; in LMTP
// "lmtpfail" is accepted at RCPT and refused (550) after the message.

const fs = require('fs');
const path = require('path');
const { SMTPServer } = require('smtp-server');

const env = name => {
    const v = process.env[name];
    if (v === undefined || v === '') {
        console.error(`runner.js: ${name} is not set`);
        process.exit(2);
    }
    return v;
};

const SPOOL = env('SPOOL');
const USER = process.env.USER_NAME || 'alice@example.com';
const PASS = process.env.USER_PASS || 'Secret-pa55';
const TOKEN = process.env.USER_TOKEN || 'ya29.interop-token';
const SIZE = Number(process.env.SIZE || 1048576);
const cert = fs.readFileSync(env('TLS_CERT'));
const key = fs.readFileSync(env('TLS_KEY'));

let counter = 0;

function save(name, stream, session, callback, lmtp) {
    const chunks = [];
    stream.on('data', c => chunks.push(c));
    stream.on('end', () => {
        if (stream.sizeExceeded) {
            // The server answers 552 itself (rejectOversized).
            return callback(null);
        }
        const id = `${name}-${process.pid}-${Date.now()}-${++counter}`;
        const e = session.envelope;
        const lines = [
            `server: ${name}`,
            `mail_from: ${e.mailFrom ? e.mailFrom.address : ''}`,
            `mail_args: ${e.mailFrom ? JSON.stringify(e.mailFrom.args || {}) : ''}`,
            ...e.rcptTo.map(r => `rcpt: ${r.address}`),
            `auth_user: ${session.user ? session.user : ''}`,
            `auth_method: ${session.user ? session.authMethod || '' : ''}`,
            `tls: ${session.secure ? 'yes' : 'no'}`,
            `transmission: ${session.transmissionType}`,
        ];
        fs.writeFileSync(path.join(SPOOL, id + '.env'), lines.join('\n') + '\n');
        // Write then rename, so a reader never sees a partial message.
        const tmp = path.join(SPOOL, '.' + id + '.tmp');
        fs.writeFileSync(tmp, Buffer.concat(chunks));
        fs.renameSync(tmp, path.join(SPOOL, id + '.eml'));
        if (lmtp) {
            return callback(null, e.rcptTo.map(r => {
                if (/^lmtpfail/i.test(r.address)) {
                    const err = new Error('5.1.1 <' + r.address + '>: mailbox unavailable (interop)');
                    err.responseCode = 550;
                    return err;
                }
                return 'OK: delivered to ' + r.address + ' as ' + id;
            }));
        }
        callback(null, 'OK: queued as ' + id);
    });
}

function onRcptTo(address, session, callback) {
    const a = address.address;
    if (/^reject/i.test(a)) {
        const err = new Error('5.1.1 <' + a + '>: Recipient address rejected (interop)');
        err.responseCode = 550;
        return callback(err);
    }
    if (/^defer/i.test(a)) {
        const err = new Error('4.2.1 <' + a + '>: Recipient deferred (interop)');
        err.responseCode = 451;
        return callback(err);
    }
    callback();
}

function onAuth(auth, session, callback) {
    if (auth.method === 'XOAUTH2') {
        if (auth.username === USER && auth.accessToken === TOKEN) {
            return callback(null, { user: auth.username });
        }
        return callback(null, {
            data: { status: '401', schemes: 'bearer', scope: 'https://mail.example.com/' }
        });
    }
    if (auth.method === 'CRAM-MD5') {
        if (auth.username === USER && auth.validatePassword(PASS)) {
            return callback(null, { user: auth.username });
        }
    } else if (auth.username === USER && auth.password === PASS) {
        return callback(null, { user: auth.username });
    }
    const err = new Error('5.7.8 Error: authentication failed: bad user name or password (interop)');
    err.responseCode = 535;
    callback(err);
}

function common(name, extra) {
    return Object.assign({
        name: 'node.interop.test',
        banner: name,
        key,
        cert,
        authMethods: ['PLAIN', 'LOGIN', 'XOAUTH2', 'CRAM-MD5'],
        authOptional: true,
        size: SIZE,
        rejectOversized: true,
        hideDSN: false,
        hideENHANCEDSTATUSCODES: false,
        maxAllowedUnauthenticatedCommands: false,
        disableReverseLookup: true,
        logger: false,
        onAuth,
        onRcptTo,
        onData: (stream, session, callback) => save(name, stream, session, callback, !!extra.lmtp),
    }, extra);
}

const servers = [
    [new SMTPServer(common('node-smtp', {})), Number(env('PORT_SMTP'))],
    [new SMTPServer(common('node-smtps', { secure: true })), Number(env('PORT_SMTPS'))],
    [new SMTPServer(common('node-lmtp', { lmtp: true, hideSTARTTLS: true, authOptional: true })), Number(env('PORT_LMTP'))],
];

let listening = 0;
for (const [server, port] of servers) {
    server.on('error', err => console.error(`port ${port}: ${err.message}`));
    server.listen(port, '127.0.0.1', () => {
        if (++listening === servers.length && process.env.PIDFILE) {
            fs.writeFileSync(process.env.PIDFILE, String(process.pid) + '\n');
        }
    });
}

const stop = () => {
    let open = servers.length;
    for (const [server] of servers) {
        server.close(() => { if (--open === 0) process.exit(0); });
    }
    setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
