from opnc.cli import main

raise SystemExit(main())
