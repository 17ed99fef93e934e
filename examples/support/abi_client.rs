//! A client built through the C ABI, as a C program builds it, for the
//! benchmarks that compare the library with C contenders (included with
//! `#[path]`; each benchmark adds the calls it times in its own `impl`).

use std::ffi::CString;
use std::path::Path;
use std::ptr;

use enos_token::ffi::builder::*;
use enos_token::ffi::client::enos_client_free;
use enos_token::ffi::enos_client;
use enos_token::ffi::enos_status::ENOS_OK;

/// An `enos_client`, freed when dropped.
pub struct Client(pub *mut enos_client);

impl Client {
    /// A client of `url` for the app `key`/`secret`, without a proxy,
    /// trusting `ca_file` when given.
    pub fn new(url: &str, key: &str, secret: &str, ca_file: Option<&Path>) -> Client {
        let url = CString::new(url).unwrap();
        let (key, secret) = (CString::new(key).unwrap(), CString::new(secret).unwrap());
        let (mut builder, mut client) = (ptr::null_mut(), ptr::null_mut());
        // SAFETY: valid strings and out-pointers; the builder is consumed by build.
        unsafe {
            assert_eq!(
                enos_client_builder_new(url.as_ptr(), key.as_ptr(), secret.as_ptr(), &mut builder),
                ENOS_OK
            );
            assert_eq!(
                enos_client_builder_set_proxy(builder, c"".as_ptr()),
                ENOS_OK
            );
            if let Some(ca_file) = ca_file {
                let ca_file = CString::new(ca_file.to_string_lossy().as_bytes()).unwrap();
                assert_eq!(
                    enos_client_builder_set_ca_file(builder, ca_file.as_ptr()),
                    ENOS_OK
                );
            }
            assert_eq!(enos_client_build(builder, &mut client), ENOS_OK);
        }
        Client(client)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // SAFETY: built by Client::new, freed once.
        unsafe { enos_client_free(self.0) };
    }
}
