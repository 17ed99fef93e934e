module enos-token.local/enostoken

go 1.19
