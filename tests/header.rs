//! The committed header must be exactly what build.rs generates from the
//! current sources: a changed doc comment or signature without a refreshed
//! `include/enos_token.h` fails here (refresh with
//! `ENOS_TOKEN_WRITE_HEADER=1 cargo build`).

#[test]
fn committed_header_matches_the_generated_one() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/enos_token.h"));
    let committed = include_str!("../include/enos_token.h");
    if generated != committed {
        let first_difference = generated
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .map(|i| i + 1);
        panic!(
            "include/enos_token.h is stale (first differing line: {first_difference:?}); \
             run `ENOS_TOKEN_WRITE_HEADER=1 cargo build` and commit it"
        );
    }
}
