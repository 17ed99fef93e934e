//! The managed token through the C ABI: every argument of its functions
//! checked, the log callback and counters as a C caller sees them, and a
//! counters struct of another version's size.

mod support;

use std::ffi::{CStr, CString, c_char, c_void};
use std::ptr;
use std::sync::Mutex;

use support::*;

unsafe extern "C" fn collect(
    level: enos_token::ffi::enos_log_level,
    message: *const c_char,
    user_data: *mut c_void,
) {
    let sink = unsafe { &*(user_data as *const Mutex<Vec<(i32, String)>>) };
    let message = unsafe { CStr::from_ptr(message) }
        .to_str()
        .unwrap()
        .to_string();
    sink.lock().unwrap().push((level as i32, message));
}

#[test]
fn managed_token_through_the_c_abi() {
    use enos_token::ffi::builder::*;
    use enos_token::ffi::client::*;
    use enos_token::ffi::enos_status::*;
    use enos_token::ffi::managed::*;
    use enos_token::ffi::signing::enos_client_auth_headers;
    use enos_token::ffi::strings::enos_string_free;

    let fake = fake();
    let (url, key, secret) = (
        CString::new(fake.url()).unwrap(),
        CString::new(APP_KEY).unwrap(),
        CString::new(APP_SECRET).unwrap(),
    );
    let sink: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());
    let mut builder = ptr::null_mut();
    let mut client = ptr::null_mut();
    unsafe {
        assert_eq!(
            enos_client_builder_new(url.as_ptr(), key.as_ptr(), secret.as_ptr(), &mut builder),
            ENOS_OK
        );
        assert_eq!(
            enos_client_builder_set_refresh_margin_s(builder, 60),
            ENOS_OK
        );
        assert_eq!(enos_client_builder_set_retries(builder, 1, 5), ENOS_OK);
        assert_eq!(
            enos_client_builder_set_retries(builder, 101, 5),
            ENOS_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            enos_client_builder_set_retries(ptr::null_mut(), 1, 5),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            enos_client_builder_set_refresh_margin_s(ptr::null_mut(), 1),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            enos_client_builder_set_log_callback(ptr::null_mut(), None, ptr::null_mut()),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            enos_client_builder_set_log_callback(
                builder,
                Some(collect),
                &sink as *const _ as *mut c_void
            ),
            ENOS_OK
        );
        assert_eq!(enos_client_build(builder, &mut client), ENOS_OK);

        let mut token: *mut c_char = ptr::NonNull::dangling().as_ptr();
        assert_eq!(
            enos_client_access_token(ptr::null(), &mut token),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert!(token.is_null());
        assert_eq!(
            enos_client_access_token(client, ptr::null_mut()),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(enos_client_access_token(client, &mut token), ENOS_OK);
        let first = CStr::from_ptr(token).to_owned();
        enos_string_free(token);
        for _ in 0..10 {
            assert_eq!(enos_client_access_token(client, &mut token), ENOS_OK);
            assert_eq!(CStr::from_ptr(token), first.as_c_str());
            enos_string_free(token);
        }

        let mut headers: *mut c_char = ptr::NonNull::dangling().as_ptr();
        assert_eq!(
            enos_client_auth_headers(ptr::null(), ptr::null(), ptr::null(), 0, &mut headers),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert!(headers.is_null());
        assert_eq!(
            enos_client_auth_headers(client, ptr::null(), ptr::null(), 3, &mut headers),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            enos_client_auth_headers(client, c"\xff".as_ptr(), ptr::null(), 0, &mut headers),
            ENOS_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            enos_client_auth_headers(client, ptr::null(), ptr::null(), 0, ptr::null_mut()),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            enos_client_auth_headers(client, c"a=1".as_ptr(), ptr::null(), 0, &mut headers),
            ENOS_OK
        );
        let text = CStr::from_ptr(headers).to_str().unwrap().to_string();
        enos_string_free(headers);
        assert!(
            text.starts_with(&format!(
                "apim-accesstoken: {}\r\n",
                first.to_str().unwrap()
            )),
            "{text}"
        );

        assert_eq!(
            enos_client_invalidate(ptr::null(), ptr::null()),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            enos_client_invalidate(client, c"\xff".as_ptr()),
            ENOS_ERR_INVALID_ARGUMENT
        );
        assert_eq!(enos_client_invalidate(client, first.as_ptr()), ENOS_OK);

        let mut counters = enos_client_counters {
            struct_size: std::mem::size_of::<enos_client_counters>(),
            ..Default::default()
        };
        assert_eq!(
            enos_client_get_counters(ptr::null(), &mut counters),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            enos_client_get_counters(client, ptr::null_mut()),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(enos_client_get_counters(client, &mut counters), ENOS_OK);
        assert_eq!(counters.get_requests, 1);
        assert_eq!(counters.cache_hits, 11, "10 reads and the auth headers");
        assert_eq!(counters.dns_lookups, 0);
        enos_client_free(client);
    }
    let messages = sink.lock().unwrap();
    assert!(
        messages
            .iter()
            .any(|(level, m)| *level == 3 && m.starts_with("Get succeeded")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|(level, m)| *level == 3 && m.contains("invalidated")),
        "{messages:?}"
    );
}

#[test]
fn counters_fill_only_what_the_callers_struct_holds() {
    use enos_token::ffi::builder::*;
    use enos_token::ffi::client::*;
    use enos_token::ffi::enos_client_counters;
    use enos_token::ffi::enos_status::*;
    use enos_token::ffi::managed::enos_client_get_counters;

    let fake = fake();
    let url = CString::new(fake.url()).unwrap();
    let (key, secret) = (
        CString::new(APP_KEY).unwrap(),
        CString::new(APP_SECRET).unwrap(),
    );
    let (mut builder, mut client) = (ptr::null_mut(), ptr::null_mut());
    unsafe {
        enos_client_builder_new(url.as_ptr(), key.as_ptr(), secret.as_ptr(), &mut builder);
        enos_client_builder_set_proxy(builder, c"".as_ptr());
        assert_eq!(enos_client_build(builder, &mut client), ENOS_OK);
    }
    let mut token = ptr::null_mut();
    unsafe { enos_client_get_token(client, &mut token, ptr::null_mut()) };
    unsafe { enos_token::ffi::strings::enos_string_free(token) };
    let size = std::mem::size_of::<enos_client_counters>();
    let first_version: usize = 64;

    // An older program's struct, followed by memory the library must not touch.
    let mut memory = [0xAAu8; 128];
    memory[..8].copy_from_slice(&first_version.to_ne_bytes());
    let status = unsafe { enos_client_get_counters(client, memory.as_mut_ptr().cast()) };
    assert_eq!(status, ENOS_OK);
    assert_eq!(
        u64::from_ne_bytes(memory[8..16].try_into().unwrap()),
        1,
        "one Get"
    );
    assert!(
        memory[first_version..].iter().all(|b| *b == 0xAA),
        "nothing past its end"
    );

    // A newer program's larger struct: the fields this library does not know are 0.
    let newer = size + 16;
    memory = [0xAAu8; 128];
    memory[..8].copy_from_slice(&newer.to_ne_bytes());
    assert_eq!(
        unsafe { enos_client_get_counters(client, memory.as_mut_ptr().cast()) },
        ENOS_OK
    );
    assert!(memory[size..newer].iter().all(|b| *b == 0));
    assert!(memory[newer..].iter().all(|b| *b == 0xAA));
    assert_eq!(
        usize::from_ne_bytes(memory[..8].try_into().unwrap()),
        newer,
        "struct_size kept"
    );

    // Not set: refused, nothing written.
    for bad in [0usize, 63, 1 << 20] {
        memory = [0xAAu8; 128];
        memory[..8].copy_from_slice(&bad.to_ne_bytes());
        let status = unsafe { enos_client_get_counters(client, memory.as_mut_ptr().cast()) };
        assert_eq!(status, ENOS_ERR_INVALID_ARGUMENT, "struct_size {bad}");
        assert!(memory[8..].iter().all(|b| *b == 0xAA));
    }
    unsafe { enos_client_free(client) };
}
