module vcm.local/toolchain/seaweedfs

go 1.26.6

require github.com/seaweedfs/seaweedfs v0.0.0-20261109003541-7506e5f91cd6

// upstream's own replace, restated: replace lines of a dependency do not apply to the module that requires it
replace github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0
