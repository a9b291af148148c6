module certrotate.test/tlspeer

go 1.26.0
