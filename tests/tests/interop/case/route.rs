//! Cases about the route to the server: through a real proxy (pproxy; the shared parts are in
//! `proxy.rs`).

use super::login_send_verify;
use crate::*;

/// One message through the proxy `via` after AUTH with `auth`: delivered (the copy verified,
/// with its AUTH user), the TLS session up although the certificate is refused for the proxy's
/// address (so it was checked for [`HOST`]), and exactly one new tunnel to `port` in pproxy's
/// log.
pub(crate) async fn case_proxied(
    ctx: &Ctx,
    t: &Target,
    label: &str,
    port: u16,
    mode: TlsMode,
    auth: AuthMechanism,
    via: Listen,
) -> Result<String, String> {
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
    let sent = login_send_verify(ctx, t, label, conn, Some(auth)).await?;
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
) -> Result<String, String> {
    let kinds = [Listen::Socks5Auth, Listen::HttpAuth];
    let route = ProxyRoute::start(&kinds)?;
    let before = route.tunnels(port);
    let mut notes = Vec::new();
    for via in kinds {
        let connected = ConnectOptions::new(mode)
            .with_tls_config(ctx.tls.clone())
            .with_connect_timeout(Duration::from_secs(10))
            .with_proxy(route.proxy_with_password(via, WRONG_PROXY_PASSWORD))
            .connect(HOST, port, EHLO)
            .await;
        let error = match connected {
            Ok(client) => {
                let _ = client.quit().await;
                return Err(format!("{via:?}: a wrong proxy password was accepted"));
            }
            Err(e) => e,
        };
        let shown = check_refused_login(&error).map_err(|e| format!("{via:?}: {e}"))?;
        notes.push(format!("{via:?}: {shown}"));
    }
    route.expect_tunnels(port, before, 0)?;
    Ok(format!("{}; no tunnel to {HOST}:{port}", notes.join("; ")))
}
