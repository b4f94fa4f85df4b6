//! Cases about the route to the server: through a real proxy (pproxy; the shared parts are in
//! `proxy.rs`).

use super::login_send_verify;
use crate::*;

/// One message through the proxy `via` after AUTH with `auth`: delivered (the copy verified,
/// with its AUTH user), the TLS session up although the certificate is refused for the proxy's
/// address (so it was checked for [`HOST`]), and exactly one new tunnel to `port` in pproxy's
/// log.
pub(crate) async fn case_proxied(
    run: Run<'_>,
    port: u16,
    mode: TlsMode,
    auth: AuthMechanism,
    via: Listen,
) -> CaseResult {
    let Run { ctx, t, .. } = run;
    let route = ProxyRoute::start(&[via])?;
    // Straight to the server, the certificate checked for the proxy's address: refused.
    let for_proxy = async {
        ConnectOptions::new(mode)
            .with_tls_config(ctx.tls.clone())
            .with_connect_timeout(Duration::from_secs(10))
            .with_tls_server_name(PROXY_IP.to_string())
            .connect(HOST, port, EHLO)
            .await?
            .quit()
            .await
    };
    check_not_for_proxy(for_proxy.await)?;
    let before = route.tunnels(port);
    let options = SmtpClientOptions::new();
    let conn = connect_route(ctx, t, port, mode, options, Some(route.proxy(via))).await?;
    let sent = login_send_verify(run, conn, Some(auth)).await?;
    let tunnels = route.expect_tunnels(port, before, 1)?;
    Ok(format!(
        "{sent}; TLS checked for {HOST} via {PROXY_IP}; {tunnels}"
    ))
}

/// Wrong credentials for a SOCKS5 and for an HTTP CONNECT proxy: each a typed connect error
/// that does not show the password, and no tunnel to `port` (so the server received nothing).
pub(crate) async fn case_proxy_wrong_credentials(
    ctx: &Ctx,
    port: u16,
    mode: TlsMode,
) -> CaseResult {
    let mut row = WrongCredentials::start(port)?;
    for via in WrongCredentials::KINDS {
        let connected = ConnectOptions::new(mode)
            .with_tls_config(ctx.tls.clone())
            .with_connect_timeout(Duration::from_secs(10))
            .with_proxy(row.proxy(via))
            .connect(HOST, port, EHLO)
            .await;
        let checked = row.check(via, &connected);
        if let Ok(client) = connected {
            let _ = client.quit().await;
        }
        checked?;
    }
    row.finish()
}
