from castd.cli import main

raise SystemExit(main())
