module authsome/loadgen

go 1.19
