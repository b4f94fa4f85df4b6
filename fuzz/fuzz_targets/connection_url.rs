//! Any string given as a connection URL is refused with a typed error or parsed into parts that
//! carry no control character (nothing a URL holds can put CR, LF or NUL into a command or an
//! AUTH payload), and the error's text never repeats the URL's password.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::connect::SmtpUrl;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match SmtpUrl::parse(&text) {
        Ok(url) => {
            let clean = |s: &str| !s.chars().any(char::is_control);
            assert!(clean(&url.host));
            assert!(url.user.as_deref().is_none_or(clean));
            if let Some(password) = &url.password {
                assert!(password.expose_str().is_some_and(clean));
            }
            assert_ne!(url.port, 0);
            if let Some(helo) = &url.helo {
                assert!(clean(helo.as_str()));
            }
            assert!(!format!("{url:?}").contains("password: Some(Secret"));
        }
        Err(error) => {
            // A password long enough to be told apart from the error's own words (and not also
            // written elsewhere in the URL, say as a parameter's name) never shows.
            // The password is in the part before the query, as the parser reads it.
            if let Some((_, rest)) = text.split_once("://")
                && let Some((info, _)) = rest.split('?').next().and_then(|a| a.rsplit_once('@'))
                && let Some((_, password)) = info.split_once(':')
                && password.len() >= 12
                && password.chars().all(|c| c.is_ascii_alphanumeric())
                // (Errors show a parameter's name without its control characters: count there.)
                && text
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect::<String>()
                    .matches(password)
                    .count()
                    == 1
            {
                assert!(!error.to_string().contains(password), "{error}");
            }
        }
    }
});
