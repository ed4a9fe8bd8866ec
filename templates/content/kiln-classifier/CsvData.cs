using System.Globalization;

namespace KilnClassifier;

/// <summary>
/// A CSV file with a header row: numeric feature columns and one label column (any text; each distinct value is a
/// class). Fields may be quoted ("a,b"); numbers use '.' as the decimal separator.
/// </summary>
public sealed class CsvData
{
    public required string[] FeatureNames { get; init; }
    public required string[] Classes { get; init; }
    /// <summary>Row-major features, <c>Rows × FeatureNames.Length</c>.</summary>
    public required float[] Features { get; init; }
    public required int[] Labels { get; init; }
    public int Rows => Labels.Length;

    /// <summary>Reads <paramref name="path"/>; the label column is <paramref name="label"/>, or the last column.</summary>
    public static CsvData Load(string path, string? label)
    {
        var lines = File.ReadLines(path).Where(l => l.Trim().Length > 0).ToList();
        if (lines.Count < 2) throw new InvalidDataException($"{path}: needs a header row and at least one data row.");
        var header = Split(lines[0]);
        int labelColumn = label is null ? header.Length - 1 : Array.IndexOf(header, label);
        if (labelColumn < 0) throw new InvalidDataException($"{path}: no column named '{label}' (columns: {string.Join(", ", header)}).");
        var featureColumns = Enumerable.Range(0, header.Length).Where(c => c != labelColumn).ToArray();
        var features = new float[(lines.Count - 1) * featureColumns.Length];
        var labelText = new string[lines.Count - 1];
        for (int r = 1; r < lines.Count; r++)
        {
            var fields = Split(lines[r]);
            if (fields.Length != header.Length)
                throw new InvalidDataException($"{path}, line {r + 1}: {fields.Length} fields, but the header has {header.Length}.");
            for (int j = 0; j < featureColumns.Length; j++)
            {
                var text = fields[featureColumns[j]];
                if (!float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
                    throw new InvalidDataException($"{path}, line {r + 1}, column '{header[featureColumns[j]]}': '{text}' is not a number.");
                features[(r - 1) * featureColumns.Length + j] = value;
            }
            labelText[r - 1] = fields[labelColumn];
        }
        var classes = labelText.Distinct().Order(StringComparer.Ordinal).ToArray();
        var index = classes.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => x.i);
        return new CsvData
        {
            FeatureNames = featureColumns.Select(c => header[c]).ToArray(),
            Classes = classes,
            Features = features,
            Labels = labelText.Select(t => index[t]).ToArray(),
        };
    }

    /// <summary>Scales every feature column to mean 0 and standard deviation 1.</summary>
    public void Standardize()
    {
        int f = FeatureNames.Length;
        for (int j = 0; j < f; j++)
        {
            double mean = 0, square = 0;
            for (int r = 0; r < Rows; r++) mean += Features[r * f + j];
            mean /= Rows;
            for (int r = 0; r < Rows; r++) square += Math.Pow(Features[r * f + j] - mean, 2);
            double std = Math.Sqrt(square / Rows);
            for (int r = 0; r < Rows; r++) Features[r * f + j] = (float)((Features[r * f + j] - mean) / (std > 0 ? std : 1));
        }
    }

    private static string[] Split(string line)
    {
        var fields = new List<string>();
        var field = new System.Text.StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quoted && c == '"' && i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; }
            else if (c == '"') quoted = !quoted;
            else if (c == ',' && !quoted) { fields.Add(field.ToString().Trim()); field.Clear(); }
            else field.Append(c);
        }
        fields.Add(field.ToString().Trim());
        return fields.ToArray();
    }
}
